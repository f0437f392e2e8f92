"""Building blocks of trainlab's HTML pages: one self-contained file, no JavaScript, no network.

Images are embedded as base64 ``data:`` URIs and the style sheet is inline, so a page can be
mailed, archived or opened offline. Every piece of text goes through ``html.escape``: run
names, config values and metric keys come from files a user (or a crashed run) wrote.
"""

from __future__ import annotations

import base64
import html
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["page", "section", "table", "image", "fmt", "write_atomic", "esc"]

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2330;
       margin: 0; background: #f4f6f9; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 28px 48px; background: #fff;
       min-height: 100vh; box-sizing: border-box; }
h1 { margin: 0 0 4px; font-size: 26px; }
h2 { margin: 32px 0 10px; font-size: 19px; border-bottom: 2px solid #e3e7ee; padding-bottom: 4px; }
h3 { margin: 18px 0 6px; font-size: 15px; color: #3a4458; }
.meta { color: #5b6578; margin: 0 0 12px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
         font-weight: 600; vertical-align: middle; margin-left: 8px; }
.ok { background: #dff3e4; color: #1c6b34; }
.bad { background: #fde2e1; color: #9b1c1c; }
.warn { background: #fff7e0; border-left: 4px solid #e0a800; padding: 8px 14px; margin: 12px 0; }
.warn li { margin: 2px 0; }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 13px; }
th, td { padding: 4px 12px; border-bottom: 1px solid #e3e7ee; text-align: left; }
th { background: #f0f2f6; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td { overflow-wrap: anywhere; max-width: 520px; }
tr:nth-child(even) td { background: #fafbfc; }
img { max-width: 100%; height: auto; display: block; margin: 8px 0 16px; }
pre { background: #f6f8fa; border: 1px solid #e3e7ee; padding: 10px 14px; overflow-x: auto;
      font-size: 12.5px; }
.cols { display: flex; flex-wrap: wrap; gap: 28px; align-items: flex-start; }
.cols > div { min-width: 0; max-width: 100%; }
footer { margin-top: 36px; color: #8a93a5; font-size: 12px; }
"""


# The page may load nothing but its own inline style and data: images: no script runs and no
# request leaves the machine, whatever a run name or config value contains.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def esc(value: Any) -> str:
    """Any value as escaped HTML text."""
    return html.escape(str(value), quote=True)


def fmt(value: Any) -> str:
    """Numbers for tables: floats to 4 significant digits, ints as they are.

    >>> fmt(0.923456), fmt(5.98e-05), fmt(12), fmt(float("nan")), fmt("adam")
    ('0.9235', '5.98e-05', '12', 'nan', 'adam')
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return "nan" if math.isnan(value) else f"{value:.4g}"


def page(title: str, body: str) -> str:
    """A complete HTML document around ``body`` (already HTML)."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def section(title: str, *parts: str) -> str:
    """``<h2>`` and the parts that follow it (empty parts dropped)."""
    inner = "\n".join(p for p in parts if p)
    return f"<section>\n<h2>{esc(title)}</h2>\n{inner}\n</section>" if inner else ""


def table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], strong: Sequence[int | None] = ()
) -> str:
    """A table; numbers are formatted with :func:`fmt` and right-aligned. ``strong[i]``: the
    column of row ``i`` to show in bold (e.g. the best run), or None.

    >>> print(table(["k", "v"], [["a<b", 0.5]]))
    <table><tr><th>k</th><th>v</th></tr>
    <tr><td>a&lt;b</td><td class="num">0.5</td></tr></table>
    """
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        bold = strong[i] if i < len(strong) else None
        cells = []
        for j, v in enumerate(row):
            # Numbers (and the dash for a missing one) right-aligned, to line up digits.
            num = (isinstance(v, (int, float)) and not isinstance(v, bool)) or v == "—"
            cls = ' class="num"' if num else ""
            text = f"<b>{esc(fmt(v))}</b>" if j == bold else esc(fmt(v))
            cells.append(f"<td{cls}>{text}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><tr>{head}</tr>\n" + "\n".join(body) + "</table>"


def image(path: Path | None, alt: str) -> str:
    """The PNG at ``path`` embedded as a data URI ("" when there is no figure)."""
    if path is None or not Path(path).is_file():
        return ""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{esc(alt)}">'


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path``, then rename: a reader (or a
    crash) never sees a half-written page, and a good old page survives a failed rebuild."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path

"""The report in a real browser: headless Chromium renders it offline, images load, no errors.

Skipped where Debian's ``chromium`` package is not installed.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trainlab.reports import build_report

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.is_file(), reason="chromium not installed")

# Injected into a copy of the page, before its Content-Security-Policy (which applies only to
# what follows it): counts images that failed to load and every blocked request, then prints
# one console line that Chromium writes to stderr.
CHECKER = """<script>
let violations = 0;
document.addEventListener("securitypolicyviolation", () => { violations += 1; });
window.addEventListener("load", () => {
  const imgs = [...document.images];
  const broken = imgs.filter((i) => !(i.complete && i.naturalWidth > 0)).length;
  console.log(`trainlab-check images=${imgs.length} broken=${broken} blocked=${violations}`);
});
</script>"""


def render(page: Path, tmp: Path, shot: bool = True) -> tuple[dict[str, int], list[str], Path]:
    """Open ``page`` with the checker; returns its counts, other console lines, screenshot
    (``shot=False``: no screenshot, which halves Chromium's time)."""
    checked = tmp / f"checked-{page.name}"
    checked.write_text(page.read_text().replace("<head>", "<head>" + CHECKER, 1))
    png = tmp / f"{page.stem}.png"
    output = [f"--screenshot={png}", "--window-size=1200,1800"] if shot else ["--dump-dom"]
    cmd = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        *output,
        checked.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    console = [ln for ln in proc.stderr.splitlines() if ":CONSOLE" in ln]
    found = [re.search(r"trainlab-check (\w+=\d+) (\w+=\d+) (\w+=\d+)", ln) for ln in console]
    [match] = [m for m in found if m]
    counts = {k: int(v) for k, v in (g.split("=") for g in match.groups())}
    return counts, [ln for ln, m in zip(console, found) if not m], png


def test_report_renders_in_chromium(tiny_run: Path, tmp_path: Path) -> None:
    page = build_report(tiny_run)
    counts, other_console, shot = render(page, tmp_path)
    expected = page.read_text().count("<img ")  # curves, confusion matrix, ROC/PR …
    assert expected >= 3
    assert counts == {"images": expected, "broken": 0, "blocked": 0}
    assert other_console == []  # no console errors or warnings
    im = Image.open(shot).convert("L")
    assert im.size == (1200, 1800)
    dark = float((np.asarray(im) < 200).mean())
    assert dark > 0.02  # text, tables and plots drawn, not a blank page


def test_checker_sees_a_network_request(tiny_run: Path, tmp_path: Path) -> None:
    # The same check on a page that tries to fetch an image over the network must fail.
    bad = tmp_path / "bad.html"
    html = build_report(tiny_run).read_text()
    bad.write_text(html.replace("</main>", '<img src="http://127.0.0.1:9/x.png"></main>'))
    counts, _, _ = render(bad, tmp_path, shot=False)
    assert counts["broken"] == 1 and counts["blocked"] >= 1

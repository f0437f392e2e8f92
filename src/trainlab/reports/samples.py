"""The report's "Samples" section: grids of generated images found in the run directory.

The ``sample_grid`` callback writes ``<run>/samples/epoch-NNNN.png`` (when no other folder is
given) and ``trainlab sample`` writes ``<run>/samples/sample-*.png``; the section shows the
first and the last epoch's grids and every ``sample-*`` grid, and ``gen_score.json`` (written
by ``trainlab gen-score --json RUN/gen_score.json``) as a table.

>>> samples_section(RunData(Path("no-such-run"), "r"))   # doctest: +SKIP
''
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from trainlab.reports.page import esc, image, section, table

__all__ = ["samples_section", "sample_grids"]


def sample_grids(run_dir: Path) -> list[tuple[Path, str]]:
    """(png, caption) pairs to show, in order: first and last epoch grid, then sample-*.png."""
    folder = Path(run_dir) / "samples"
    if not folder.is_dir():
        return []
    epochs = sorted(folder.glob("epoch-*.png"))
    shown = [epochs[0], epochs[-1]] if len(epochs) > 1 else epochs
    out = [(p, f"epoch {int(p.stem.split('-')[1])}: samples from fixed noise / codes")
           for p in shown]  # fmt: skip
    out += [(p, f"trainlab sample: {p.stem.removeprefix('sample-')}")
            for p in sorted(folder.glob("sample-*.png"))]  # fmt: skip
    return out


def _scores(run_dir: Path) -> str:
    path = Path(run_dir) / "gen_score.json"
    try:
        info: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return ""
    keys = ("run", "sampler", "steps", "n", "fd", "confidence", "inception_score")
    rows = [[r.get(k) for k in keys] for r in info.get("rows", [])]
    head = ["run", "sampler", "steps", "n", "Fréchet distance", "confidence", "inception score"]
    note = f"classifier {esc(info.get('classifier'))}; features: {esc(info.get('features'))}"
    return "<h3>gen-score</h3>" + table(head, rows) + f'<p class="meta">{note}</p>'


def samples_section(run: Any) -> str:
    """HTML of the section ("" when the run has no sample grids)."""
    grids = sample_grids(run.path)
    scores = _scores(run.path)
    if not grids and not scores:
        return ""
    parts = [f"<figure>{image(p, cap)}<figcaption>{esc(cap)}</figcaption></figure>"
             for p, cap in grids]  # fmt: skip
    return section("Samples", *parts, scores)

"""The report's insight sections: top losses, weight and gradient norms, the model summary and
the warnings the run raised. Each reads its own file of the run directory (``top_losses_*``,
``norms.jsonl``, ``model_summary.txt``, ``warnings.json``); a missing file means no section.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from trainlab.reports import plots
from trainlab.reports.page import esc, image, section, table
from trainlab.reports.rundata import RunData
from trainlab.tracking.top_losses import read_top_losses
from trainlab.tracking.warnings_log import read_warnings

__all__ = [
    "figures",
    "read_norms",
    "read_inputs",
    "top_losses_section",
    "norms_section",
    "model_section",
    "warnings_section",
    "warnings_note",
]

TABLE_ROWS = 10  # rows of the top-loss table (the image grid shows every kept example)


def read_norms(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of ``norms.jsonl`` (torn or malformed lines skipped; a resumed run's
    repeated step: the later record wins)."""
    path = Path(run_dir) / "norms.jsonl"
    if not path.is_file():
        return []
    by_step: dict[int, dict[str, Any]] = {}
    for line in path.read_text(errors="replace").splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if isinstance(r, dict) and isinstance(r.get("step"), int):
            if isinstance(r.get("weight"), dict) and isinstance(r.get("grad", {}), dict):
                by_step[r["step"]] = r
    return [by_step[s] for s in sorted(by_step)]


def read_inputs(run_dir: str | Path, split: str = "test") -> Any:
    """The kept top-loss images, array (k, C, H, W), or None."""
    path = Path(run_dir) / f"top_losses_{split}.safetensors"
    if not path.is_file():
        return None
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return load_file(str(path)).get("inputs")
    except (OSError, SafetensorError):
        return None


def figures(run: RunData, split: str = "test") -> dict[str, Path | None]:
    """``norms.png`` and ``top_losses.png``, when the run has their data."""
    out: dict[str, Path | None] = {
        "norms": plots.plot_norms(read_norms(run.path), run.path / "norms.png"),
        "top_losses": None,
    }
    top = read_top_losses(run.path, split)
    images = read_inputs(run.path, split) if top and top.get("images") else None
    if top and images is not None:
        names = top.get("classes") or None
        out["top_losses"] = plots.plot_top_losses(
            top["rows"], images, run.path / "top_losses.png", names
        )
    return out


def top_losses_section(run: RunData, figs: dict[str, Path | None], split: str = "test") -> str:
    top = read_top_losses(run.path, split)
    if not top or not top["rows"]:
        return ""
    rows = top["rows"]
    classify = top.get("kind") == "classification"
    what = (
        "the examples with the highest cross-entropy, i.e. the lowest probability given to the "
        "true class: mostly confident mistakes"
        if classify
        else "the examples with the largest squared error"
    )
    note = (
        f'<p class="meta">The {len(rows)} {esc(split)} examples the model got most wrong, out '
        f"of {esc(top.get('evaluated', '?'))}: {what}. <i>index</i> is the position in the "
        "split.</p>"
    )
    grid = image(figs.get("top_losses"), f"{split} examples with the highest loss")
    return section("Top losses", note, grid, table(*_loss_table(rows, classify)))


def _loss_table(rows: list[dict[str, Any]], classify: bool) -> tuple[list[str], list[list[Any]]]:
    shown = rows[:TABLE_ROWS]
    features = any("features" in r for r in shown)
    if classify:
        head = ["index", "true", "predicted", "confidence", "p(true)", "loss"]
        body = [
            [r.get("index"), r.get("target_name", r.get("target")),
             r.get("pred_name", r.get("pred")), r.get("confidence"), r.get("p_true"), r["loss"]]
            for r in shown
        ]  # fmt: skip
    else:
        head = ["index", "target", "prediction", "error", "squared error"]
        body = [
            [r.get("index"), r.get("target"), r.get("pred"), r.get("error", "—"), r["loss"]]
            for r in shown
        ]
    if features:
        head.append("features (first)")
        for line, r in zip(body, shown):
            line.append(", ".join(f"{v:.3g}" for v in r.get("features", [])))
    return head, [[_cell(v) for v in line] for line in body]


def _cell(v: Any) -> Any:
    # Lists (several outputs) as text; numbers stay numbers for fmt() and alignment.
    return ", ".join(f"{x:.4g}" for x in v) if isinstance(v, list) else v


def norms_section(figs: dict[str, Path | None]) -> str:
    png = figs.get("norms")
    if png is None:
        return ""
    note = (
        '<p class="meta">L2 norm of each layer\'s parameters and of the gradient the optimizer '
        "used, every <code>train.hist_every</code> steps (<code>norms.jsonl</code>). Gradients "
        "that shrink by decades from the last layer to the first vanish; norms that keep growing "
        "explode.</p>"
    )
    return section("Weights and gradients", note, image(png, "weight and gradient norms"))


def model_section(run: RunData) -> str:
    path = run.path / "model_summary.txt"
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return section("Model", f"<pre>{esc(text.rstrip())}</pre>") if text.strip() else ""


def warnings_section(run: RunData) -> str:
    items = read_warnings(run.path)
    if not items:
        return ""
    rows = [
        [w.get("category", ""), w.get("message", ""), _where(w), w.get("count", 1)] for w in items
    ]
    body = table(["category", "message", "where", "times"], rows)
    return f'<section id="warnings">\n<h2>Warnings raised by the run</h2>\n{body}\n</section>'


def warnings_note(run: RunData) -> str | None:
    """One line for the page's warning box, when the run raised Python warnings."""
    n = len(read_warnings(run.path))
    if not n:
        return None
    return f"The run raised {n} distinct Python warning{'s' if n > 1 else ''} (listed below)."


def _where(w: dict[str, Any]) -> str:
    name = Path(str(w.get("filename", ""))).name
    return f"{name}:{w.get('lineno', '')}" if name else ""

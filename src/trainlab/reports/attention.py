"""The report's attention heat maps (``attention.png``) from the run's ``attention.json``.

One row per example, one panel per attention map (the RNN's attention, or each Transformer
decoder layer's cross-attention averaged over its heads): target tokens down, source tokens
across, darker = more attention. Written by :func:`trainlab.tracking.attention_maps.
write_attention_maps` at the end of a seq2seq or Transformer run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainlab.reports.page import image, section
from trainlab.reports.plots import _figure, _save
from trainlab.reports.rundata import RunData
from trainlab.tracking.attention_maps import read_attention_maps

__all__ = ["plot_attention", "figures", "attention_section"]


def plot_attention(maps: dict[str, Any], out: Path) -> Path | None:
    """Heat maps of ``maps`` (the ``attention.json`` structure) into ``out``; None if empty.

    >>> plot_attention({"examples": [{"src": [3, 4], "tgt": [4, 3],
    ...     "maps": {"attention": [[0.1, 0.9], [0.8, 0.2]]}}]}, Path("a.png"))  # doctest: +SKIP
    """
    examples = [e for e in maps.get("examples", []) if e.get("maps")]
    if not examples:
        return None
    names = list(examples[0]["maps"])
    # One map per example (RNN attention): the examples side by side; else one row each.
    wide = len(names) == 1
    rows, cols = (1, len(examples)) if wide else (len(examples), len(names))
    s_max = max(len(e["src"]) for e in examples)
    side = min(1.2 + 0.28 * s_max, 6.0)
    fig = _figure(side * cols + 0.8, side * rows + 0.3)
    axes = fig.subplots(rows, cols, squeeze=False)
    for r, ex in enumerate(examples):
        for c, name in enumerate(names):
            ax = axes[0][r] if wide else axes[r][c]
            weights = ex["maps"][name]
            im = ax.imshow(weights, cmap="Blues", vmin=0, vmax=1, aspect="auto")
            ax.set_xticks(range(len(ex["src"])), [str(t) for t in ex["src"]], fontsize=7)
            ax.set_yticks(range(len(ex["tgt"])), [str(t) for t in ex["tgt"]], fontsize=7)
            ax.set_xlabel("source token", fontsize=8)
            ax.set_ylabel("target token", fontsize=8)
            if r == 0 or wide:
                ax.set_title(name if not wide or r == 0 else f"example {r + 1}", fontsize=9)
    fig.colorbar(im, ax=axes, shrink=0.6, label="attention weight")
    return _save(fig, out)


def figures(run: RunData) -> dict[str, Path | None]:
    """``attention.png`` when the run saved attention maps."""
    maps = read_attention_maps(run.path)
    return {"attention": plot_attention(maps, run.path / "attention.png") if maps else None}


def attention_section(run: RunData, figs: dict[str, Path | None]) -> str:
    """The report's "Attention" section ("" without a figure)."""
    if figs.get("attention") is None:
        return ""
    maps = read_attention_maps(run.path) or {}
    note = (
        f'<p class="meta">Teacher-forced decoding of the first {len(maps.get("examples", []))} '
        f"{maps.get('split', 'test')} examples with the evaluated weights: row t is where the "
        "decoder looks while predicting target token t (each row sums to 1).</p>"
    )
    return section("Attention", note, image(figs["attention"], "attention maps"))

"""Figures of a run, as PNG files: curves, LR schedule, confusion matrix, per-class bars,
ROC/PR curves, weight and gradient norms, top losses, and overlays of several runs.

Figures are built with ``matplotlib.figure.Figure`` directly, not ``pyplot``: no global figure
state and no GUI backend, so plotting is safe from threads and from machines without a display.
Each function returns the path it wrote, or None when the run has nothing to draw.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trainlab.reports.rundata import RunData

__all__ = [
    "plot_curves",
    "plot_lr",
    "plot_confusion",
    "plot_per_class",
    "plot_roc_pr",
    "plot_overlay",
    "plot_norms",
    "plot_top_losses",
]

DPI = 100
TRAIN, VAL = "#1f77b4", "#d62728"


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _save(fig: Any, out: Path) -> Path:
    # Written beside the target, then renamed: a crash never leaves half a PNG in its place.
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp{out.suffix}")
    fig.savefig(tmp, dpi=DPI)
    os.replace(tmp, out)
    return out


def metric_panels(run: RunData) -> list[tuple[str, str | None, str | None]]:
    """``(title, train_key, val_key)`` for each curve panel: the loss, then accuracy (or, for
    tasks without it, the first other validation metric)."""
    keys = run.keys()
    panels: list[tuple[str, str | None, str | None]] = []
    if keys & {"train/loss_epoch", "val/loss"}:
        panels.append(("loss", _pick("train/loss_epoch", keys), _pick("val/loss", keys)))
    if keys & {"train/acc_epoch", "val/acc"}:
        panels.append(("accuracy", _pick("train/acc_epoch", keys), _pick("val/acc", keys)))
    else:
        other = sorted(k for k in keys if k.startswith("val/") and k != "val/loss")
        if other:
            panels.append((other[0].split("/", 1)[1], None, other[0]))
    return panels


def _pick(key: str, keys: set[str]) -> str | None:
    return key if key in keys else None


def plot_curves(run: RunData, out: Path) -> Path | None:
    """Train vs validation loss and accuracy per epoch; step-level training loss drawn faintly
    behind the epoch means (x in epochs, from ``step / steps_per_epoch``).

    >>> plot_curves(load_run("runs/demo"), Path("runs/demo/curves.png"))  # doctest: +SKIP
    """
    panels = metric_panels(run)
    if not panels:
        return None
    fig = _figure(5.2 * len(panels), 3.6)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    spe = _steps_per_epoch(run)
    for ax, (title, train_key, val_key) in zip(axes, panels):
        step_key = train_key.removesuffix("_epoch") if train_key else None
        if step_key and spe:
            steps, values = run.series(step_key, x="step")
            ax.plot([s / spe for s in steps], values, color=TRAIN, alpha=0.25, lw=1)
        for key, color, label in ((train_key, TRAIN, "train"), (val_key, VAL, "val")):
            if key:
                xs, ys = run.series(key)
                ax.plot(xs, ys, color=color, marker="o", ms=3, label=label)
        ax.set(title=title, xlabel="epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(fig, out)


def _steps_per_epoch(run: RunData) -> float | None:
    # Epoch-end records carry the step count at the end of that epoch.
    for r in run.records:
        if r.get("epoch") and ("val/loss" in r or "train/loss_epoch" in r) and r.get("step"):
            return float(r["step"]) / r["epoch"]
    return None


def plot_lr(run: RunData, out: Path) -> Path | None:
    """The learning rate over optimizer steps (None when it never changed)."""
    steps, lrs = run.series("lr", x="step")
    if len(set(lrs)) < 2:
        return None  # a constant rate is one number; the report states it in words
    fig = _figure(5.2, 2.8)
    ax = fig.subplots()
    ax.plot(steps, lrs, color=TRAIN, drawstyle="steps-post")
    ax.set(title="learning rate", xlabel="step")
    if min(lrs) > 0 and max(lrs) / min(lrs) > 50:
        ax.set_yscale("log")  # warm-up and decay span decades
    ax.grid(alpha=0.3)
    return _save(fig, out)


def plot_confusion(matrix: Sequence[Sequence[float]], out: Path, names: list[str]) -> Path:
    """Confusion matrix as counts and normalised per true class (rows), side by side.

    >>> plot_confusion([[5, 1], [0, 6]], Path("cm.png"), ["cat", "dog"])  # doctest: +SKIP
    """
    import numpy as np

    counts = np.asarray(matrix, dtype=float)
    rows = counts.sum(axis=1, keepdims=True)
    normed = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    k = len(counts)
    side = min(3.0 + 0.3 * k, 9.0)
    fig = _figure(2 * side + 1, side)
    for ax, data, title, fmt in zip(
        fig.subplots(1, 2), (counts, normed), ("counts", "normalised by true class"), ("g", ".2f")
    ):
        im = ax.imshow(data, cmap="Blues", vmin=0)
        fig.colorbar(im, ax=ax, shrink=0.8)
        ax.set(title=title, xlabel="predicted", ylabel="true")
        _class_ticks(ax.set_xticks, names)
        ax.set_yticks(range(k), names)
        if k <= 20:  # beyond that the numbers are unreadable; the colours still tell
            hi = data.max() / 2 if data.max() > 0 else 1
            for i in range(k):
                for j in range(k):
                    ax.text(
                        j,
                        i,
                        format(data[i, j], fmt),
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="white" if data[i, j] > hi else "black",
                    )
    return _save(fig, out)


def plot_per_class(values: Sequence[float], out: Path, names: list[str], title: str) -> Path:
    """One bar per class (e.g. per-class accuracy), the mean as a dashed line."""
    k = len(values)
    fig = _figure(min(3 + 0.45 * k, 14), 3.4)
    ax = fig.subplots()
    ax.bar(range(k), values, color=TRAIN)
    mean = sum(values) / k if k else 0.0
    ax.axhline(mean, color=VAL, ls="--", lw=1)
    _class_ticks(ax.set_xticks, names)
    # The mean goes in the title: a legend box would sit on top of some bar.
    ax.set(title=f"{title} (mean {mean:.3f}, dashed)", ylim=(0, 1.05))
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, out)


def _class_ticks(set_ticks: Any, names: list[str]) -> None:
    # Long names on many classes overlap unless slanted.
    slant = len(names) > 5 and max(len(n) for n in names) > 2
    set_ticks(
        range(len(names)), names, rotation=45 if slant else 0, ha="right" if slant else "center"
    )


def plot_roc_pr(
    roc: Any, pr: Any, out: Path, names: list[str], areas: tuple[Any, Any] = (None, None)
) -> Path:
    """One-vs-rest ROC and PR curves from ``(2, K, T)`` lists, as ``curve_metrics`` computes
    them (``[fpr, tpr]`` and ``[recall, precision]``); ``areas``: macro AUROC and AP, if known."""
    fig = _figure(10.5, 4.2)
    axes = fig.subplots(1, 2)
    titles = [
        "ROC (one-vs-rest)" + (f", macro AUROC {areas[0]:.3f}" if _num(areas[0]) else ""),
        "precision-recall (one-vs-rest)" + (f", macro AP {areas[1]:.3f}" if _num(areas[1]) else ""),
    ]
    for ax, curves, title, (xl, yl) in (
        (axes[0], roc, titles[0], ("false positive rate", "true positive rate")),
        (axes[1], pr, titles[1], ("recall", "precision")),
    ):
        xs, ys = curves
        for i, (x, y) in enumerate(zip(xs, ys)):
            ax.plot(x, y, lw=1.2, label=names[i] if i < len(names) else str(i))
        ax.set(title=title, xlabel=xl, ylabel=yl, xlim=(0, 1), ylim=(0, 1.02))
        ax.grid(alpha=0.3)
    axes[0].plot([0, 1], [0, 1], color="grey", ls=":", lw=1)
    if len(xs) <= 12:
        axes[1].legend(fontsize=7, loc="lower left")
    return _save(fig, out)


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def plot_overlay(runs: Sequence[RunData], keys: Sequence[str], out: Path) -> Path | None:
    """One panel per metric key, one line per run (validation curves across runs)."""
    keys = [k for k in keys if any(r.series(k)[0] for r in runs)]
    if not keys:
        return None
    fig = _figure(5.2 * len(keys), 3.6)
    for ax, key in zip(fig.subplots(1, len(keys), squeeze=False)[0], keys):
        for run in runs:
            xs, ys = run.series(key)
            if xs:
                ax.plot(xs, ys, marker="o", ms=3, label=run.path.name)
        ax.set(title=key, xlabel="epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, out)


def norm_layers(records: Sequence[dict[str, Any]], top: int = 8) -> list[str]:
    """The layers to draw: all of them when few, else ``top`` spread evenly over the depth
    (first and last included), where vanishing or exploding gradients show.

    >>> norm_layers([{"weight": {f"l{i}": 1.0 for i in range(20)}}], top=4)
    ['l0', 'l6', 'l13', 'l19']
    """
    layers: list[str] = []
    for r in records:
        layers.extend(k for k in r.get("weight", {}) if k not in layers)
    if len(layers) <= top:
        return layers
    picks = sorted({round(i * (len(layers) - 1) / (top - 1)) for i in range(top)})
    return [layers[i] for i in picks]


def plot_norms(records: Sequence[dict[str, Any]], out: Path, top: int = 8) -> Path | None:
    """Per-layer weight and gradient L2 norms over optimizer steps (``norms.jsonl`` records);
    gradients on a log scale. None when fewer than two records."""
    if len(records) < 2:
        return None
    layers = norm_layers(records, top)
    n_all = len({k for r in records for k in r.get("weight", {})})
    fig = _figure(11, 3.8)
    axes = fig.subplots(1, 2)
    for ax, kind in zip(axes, ("weight", "grad")):
        for layer in layers:
            pts = [(r["step"], r[kind][layer]) for r in records if layer in r.get(kind, {})]
            if pts:
                ax.plot(*zip(*pts), marker="o", ms=2, lw=1.2, label=layer)
        ax.set(title=f"{kind} L2 norm per layer", xlabel="step")
        ax.grid(alpha=0.3)
    if any(r.get("grad") for r in records) and _positive(records, "grad"):
        axes[1].set_yscale("log")  # gradients span decades between layers and over training
    shown = (
        f"{len(layers)} of {n_all} layers,\nspread over the depth" if n_all > len(layers) else ""
    )
    handles, labels = axes[0].get_legend_handles_labels()
    # Beside the panels, not on them: lines of several layers fill the whole plot area.
    fig.legend(handles, labels, loc="outside right upper", fontsize=7, title=shown or None,
               title_fontsize=7)  # fmt: skip
    return _save(fig, out)


def _positive(records: Sequence[dict[str, Any]], kind: str) -> bool:
    return all(v > 0 for r in records for v in r.get(kind, {}).values())


def plot_top_losses(
    rows: Sequence[dict[str, Any]], images: Any, out: Path, names: list[str] | None = None
) -> Path | None:
    """A grid of the highest-loss examples, worst first: each image titled true / predicted,
    the prediction's confidence and the loss. ``images``: array (k, C, H, W) in row order."""
    import numpy as np

    n = min(len(rows), len(images))
    if n == 0:
        return None
    cols = min(4, n)
    nrows = -(-n // cols)
    fig = _figure(2.2 * cols, 2.5 * nrows)
    axes = fig.subplots(nrows, cols, squeeze=False).ravel()
    for ax, row, img in zip(axes, rows, images):
        ax.imshow(_display(np.asarray(img, dtype=float)), cmap="gray", interpolation="nearest")
        true, pred = _label(row, "target", names), _label(row, "pred", names)
        ax.set_title(
            f"{true} → {pred}\nconf {row.get('confidence', 0):.2f} · loss {row['loss']:.2f}",
            fontsize=8,
            color=VAL if true != pred else "black",
        )
        ax.set_axis_off()
    for ax in axes[n:]:
        ax.set_axis_off()
    return _save(fig, out)


def _label(row: dict[str, Any], key: str, names: list[str] | None) -> str:
    i = row.get(key)
    if names and isinstance(i, int) and 0 <= i < len(names):
        return names[i]
    return str(i)


def _display(img: Any) -> Any:
    """(C, H, W) normalised inputs → (H, W) or (H, W, 3) in [0, 1], scaled per image."""
    import numpy as np

    img = img[0] if img.shape[0] == 1 else np.transpose(img, (1, 2, 0))
    img = np.nan_to_num(img)
    lo, hi = float(img.min()), float(img.max())
    return (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)

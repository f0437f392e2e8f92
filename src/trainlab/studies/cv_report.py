"""The cross-validation report: figures over folds, the out-of-fold confusion matrix, per-fold
validation curves; written as ``cv.json``, ``cv.md`` and ``cv.png`` and printed as a table."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rich.console import Console

from trainlab.studies.stats import Summary, format_summary, summarize

__all__ = ["aggregate", "out_of_fold", "report", "print_table", "best_epoch"]


def best_epoch(history: list[dict[str, Any]], monitor: str, mode: str) -> dict[str, Any] | None:
    """The epoch record best by ``monitor`` (first of equals), or None when never logged."""
    scored = [h for h in history if isinstance(h.get(monitor), (int, float))
              and math.isfinite(h[monitor])]  # fmt: skip
    if not scored:
        return None
    sign = 1.0 if mode == "max" else -1.0
    return max(scored, key=lambda h: sign * h[monitor])


def aggregate(
    folds: list[dict[str, Any]], monitor: str, mode: str
) -> dict[str, dict[str, Summary]]:
    """``{"final": {key: Summary}, "best": {key: Summary}}`` over the folds' scalar
    validation metrics: at the end of training, and at each fold's best epoch."""
    finals: dict[str, list[float]] = {}
    bests: dict[str, list[float]] = {}
    for f in folds:
        for k, v in f["final"].items():
            if isinstance(v, (int, float)):
                finals.setdefault(k, []).append(float(v))
        best = best_epoch(f.get("history", []), monitor, mode)
        for k, v in (best or {}).items():
            if k.startswith("val/") and isinstance(v, (int, float)):
                bests.setdefault(k, []).append(float(v))
    return {
        "final": {k: summarize(v) for k, v in finals.items()},
        "best": {k: summarize(v) for k, v in bests.items()},
    }


def out_of_fold(folds: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The folds' held-out confusion matrices summed: every pool sample predicted by the model
    that did not train on it (once per repeat). Rows: true class, columns: predicted."""
    mats = [f["confusion"] for f in folds if f.get("confusion") is not None]
    if not mats:
        return None
    total = [[sum(m[i][j] for m in mats) for j in range(len(mats[0]))] for i in range(len(mats[0]))]
    n = sum(map(sum, total))
    correct = sum(total[i][i] for i in range(len(total)))
    return {"confusion": total, "n": n, "acc": correct / n if n else math.nan}


def report(
    out: Path,
    plan: dict[str, Any],
    folds: list[dict[str, Any]],
    refit: dict[str, Any] | None,
    trained: list[str],
) -> Any:
    """Aggregate, write ``cv.json``, ``cv.md`` and ``cv.png`` in ``out``; a ``CVResult``."""
    from trainlab.studies.cv import CVResult
    from trainlab.tracking.rundir import write_json

    metrics = aggregate(folds, plan["monitor"], plan["monitor_mode"])
    result = CVResult(out, {**plan, "status": "done"}, folds, metrics, out_of_fold(folds),
                      _refit_record(refit), trained)  # fmt: skip
    plot_path = plot(out / "cv.png", folds, plan, result.oof)
    write_json(out / "cv.json", {**result.as_dict(), "plot": plot_path.name})
    (out / "cv.md").write_text(markdown(result))
    return result


def _refit_record(refit: dict[str, Any] | None) -> dict[str, Any] | None:
    if refit is None:
        return None
    return {"run_dir": refit.get("run_dir"), "test": refit.get("test", {}),
            "final": refit.get("final", {})}  # fmt: skip


_BEST_NOTE = (
    "final: at the end of each fold's training. best: at each fold's best epoch by {monitor}, "
    "an epoch picked on the held-out part itself, so an optimistic figure."
)


def _rows(result: Any) -> list[tuple[str, Summary]]:
    rows = [(f"final {k}", s) for k, s in sorted(result.metrics["final"].items())]
    monitor = result.plan["monitor"]
    if monitor in result.metrics["best"]:
        rows.append((f"best {monitor}", result.metrics["best"][monitor]))
    return rows


def markdown(result: Any) -> str:
    """The report as a Markdown page: the figures, the confusion matrix, the folds."""
    p = result.plan
    lines = [f"# Cross-validation of {p['recipe']}", "",
             f"{p['scheme']}, {p['folds']} folds × {p['repeats']} repeat(s), seed {p['seed']}, "
             f"{p['pool_size']} training samples (test split of {p['test_size']} not used).", "",
             "| metric | mean ± std | 95% CI | n |", "|---|---|---|---|"]  # fmt: skip
    for name, s in _rows(result):
        ci = "-" if s.ci95_low is None else f"{s.ci95_low:.4f} – {s.ci95_high:.4f}"
        lines.append(f"| {name} | {s.mean:.4f} ± {s.std:.4f} | {ci} | {s.n} |")
    lines += ["", _BEST_NOTE.format(monitor=p["monitor"])]
    if result.oof is not None:
        names = p.get("classes") or [str(i) for i in range(len(result.oof["confusion"]))]
        lines += ["", f"Out-of-fold confusion matrix ({result.oof['n']} predictions, accuracy "
                  f"{result.oof['acc']:.4f}; rows true, columns predicted):", "",
                  "| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]  # fmt: skip
        for name, row in zip(names, result.oof["confusion"], strict=True):
            lines.append(f"| {name} | " + " | ".join(map(str, row)) + " |")
    if result.refit is not None:
        test = ", ".join(f"{k} {v:.4f}" for k, v in result.refit["test"].items())
        lines += ["", f"Refit on all training data: `{result.refit['run_dir']}` — {test or '-'}"]
    return "\n".join(lines) + "\n"


def plot(path: Path, folds: list[dict[str, Any]], plan: dict[str, Any],
         oof: dict[str, Any] | None) -> Path:  # fmt: skip
    """Per-fold validation loss and monitored metric by epoch (thin lines, mean in black), and
    the out-of-fold confusion matrix, in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    keys = ["val/loss", plan["monitor"]]
    panels = len(keys) + (oof is not None)
    fig, axes = plt.subplots(1, panels, figsize=(4.5 * panels, 3.6))
    alpha = 0.8 if len(folds) <= 20 else 0.15
    for ax, key in zip(axes, keys, strict=False):
        curves = [[(h["epoch"], h[key]) for h in f.get("history", []) if key in h] for f in folds]
        for c in curves:
            if c:
                ax.plot(*zip(*c, strict=True), lw=1, alpha=alpha)
        _mean_curve(ax, curves)
        ax.set(xlabel="epoch", ylabel=key, title=f"{key} per fold")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if oof is not None:
        ax = axes[-1]
        ax.imshow(oof["confusion"], cmap="Blues")
        for i, row in enumerate(oof["confusion"]):
            for j, v in enumerate(row):
                ax.text(j, i, str(v), ha="center", va="center", fontsize=7)
        names = plan.get("classes") or [str(i) for i in range(len(oof["confusion"]))]
        ticks = range(len(names))
        ax.set_xticks(ticks, names, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(ticks, names, fontsize=7)
        ax.set(xlabel="predicted", ylabel="true", title=f"out-of-fold (acc {oof['acc']:.3f})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _mean_curve(ax: Any, curves: list[list[tuple[int, float]]]) -> None:
    by_epoch: dict[int, list[float]] = {}
    for c in curves:
        for e, v in c:
            by_epoch.setdefault(e, []).append(v)
    if by_epoch:
        xs = sorted(by_epoch)
        ax.plot(xs, [sum(by_epoch[e]) / len(by_epoch[e]) for e in xs], "k-", lw=2, label="mean")
        ax.legend(loc="best", fontsize=8)


def print_table(result: Any, console: Console) -> None:
    """The figures as a rich table, then where the report is."""
    from rich.table import Table

    p = result.plan
    scheme = {"loo": "leave-one-out", "kfold": "k-fold"}.get(p["scheme"], p["scheme"])
    table = Table(title=f"{p['recipe']}: {scheme} cross-validation, {len(result.folds)} runs")
    for col in ("metric", "mean ± std (95% CI)"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for name, s in _rows(result):
        table.add_row(name, format_summary(s))
    if result.oof is not None:
        table.add_row("out-of-fold acc", f"{result.oof['acc']:.4f} (n={result.oof['n']})")
    for k, v in (result.refit or {}).get("test", {}).items():
        table.add_row(f"refit {k}", f"{v:.4f}")
    table.caption = _BEST_NOTE.format(monitor=p["monitor"])
    console.print(table)
    console.print(f"report: {result.out / 'cv.md'}  {result.out / 'cv.png'}")
    print(f"cv: {result.out}", flush=True)  # last line, on stdout: scripts can parse it

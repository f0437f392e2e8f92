"""Side-by-side comparison of runs: metrics table, config differences, overlaid curves.

``compare_runs(paths)`` reads run directories (or folders of runs, e.g. a sweep) and lines up
their headline figures; ``write_comparison`` renders the same as a self-contained HTML page.
Runs that differ only by seed also get a mean ± std column.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainlab.reports import plots
from trainlab.reports.page import esc, fmt, image, page, section, table, write_atomic
from trainlab.reports.rundata import ReportError, RunData, find_runs, flatten, load_run

__all__ = ["Comparison", "compare_runs", "write_comparison", "rich_tables"]

MISSING = "—"


@dataclass
class Comparison:
    """Runs lined up: ``values[i][metric]`` for run ``labels[i]``; ``config_diff`` maps each
    dotted config key whose value differs to the value per run (``MISSING`` where absent)."""

    runs: list[RunData]
    labels: list[str]
    metrics: list[str]
    values: list[dict[str, float]]
    config_diff: dict[str, list[Any]]

    @property
    def seed_only(self) -> bool:
        """True when at least two runs differ in nothing but seeds (and names)."""
        return len(self.runs) > 1 and all(_seed_like(k) for k in self.config_diff)

    def mean_std(self, metric: str) -> tuple[float, float] | None:
        """Mean and sample standard deviation of ``metric`` over the runs that have it."""
        xs = [v[metric] for v in self.values if metric in v]
        if len(xs) < 2:
            return None
        return statistics.fmean(xs), statistics.stdev(xs)

    def best(self, metric: str) -> int | None:
        """Index of the best run for ``metric`` (lowest loss/time, highest other), or None."""
        way = direction(metric)
        have = [(v[metric], i) for i, v in enumerate(self.values) if metric in v]
        if way is None or len(have) < 2:
            return None
        return (min(have) if way == "min" else max(have))[1]


def _seed_like(key: str) -> bool:
    return key == "name" or key.rsplit(".", 1)[-1].endswith("seed")


def direction(metric: str) -> str | None:
    """Which way is better for ``metric``: "min" (losses, errors, time), "max", or None.

    >>> direction("final train/loss_epoch"), direction("test/acc"), direction("epochs")
    ('min', 'max', None)
    """
    if metric in ("epochs", "steps", "best epoch"):
        return None
    name = metric.rsplit("/", 1)[-1].removesuffix("_epoch")
    low = ("wall_s", "mae", "mse", "rmse", "perplexity", "peak_rss_mib", "cuda_max_allocated_mib")
    return "min" if name.endswith("loss") or name in low else "max"


def compare_runs(paths: list[str | Path]) -> Comparison:
    """Load the runs under ``paths`` and line them up.

    >>> c = compare_runs(["runs/lr-0.1", "runs/lr-0.01"])          # doctest: +SKIP
    >>> c.config_diff                                                # doctest: +SKIP
    {'optim.lr': [0.1, 0.01]}
    """
    dirs = find_runs(paths)
    if not dirs:
        raise ReportError("compare: no runs given")
    runs = [load_run(d) for d in dirs]
    values = [r.headline() for r in runs]
    metrics: list[str] = []
    for v in values:
        metrics.extend(k for k in v if k not in metrics)
    return Comparison(runs, _labels(dirs), metrics, values, config_diff(runs))


def _labels(dirs: list[Path]) -> list[str]:
    names = [d.name for d in dirs]
    if len(set(names)) == len(names):
        return names
    return [f"{d.parent.name}/{d.name}" for d in dirs]  # same name in two sweeps


def config_diff(runs: list[RunData]) -> dict[str, list[Any]]:
    """Dotted config keys whose values are not the same in every run.

    >>> a = RunData(Path("a"), "a", config={"optim": {"lr": 0.1}, "seed": 0})
    >>> b = RunData(Path("b"), "b", config={"optim": {"lr": 0.01}, "seed": 0})
    >>> config_diff([a, b])
    {'optim.lr': [0.1, 0.01]}
    """
    flat = [flatten(r.config) for r in runs]
    keys: list[str] = []
    for f in flat:
        keys.extend(k for k in f if k not in keys)
    diff = {}
    for k in keys:
        vals = [f.get(k, MISSING) for f in flat]
        # A key absent from an older run's config and None (off) in a newer one is the same
        # setting: options are added to the schema with None defaults.
        same = [None if v == MISSING else v for v in vals]
        if any(v != same[0] for v in same[1:]):
            diff[k] = vals
    return diff


def overlay_keys(runs: list[RunData]) -> list[str]:
    """Validation curves worth overlaying: the loss and the main metric of the first runs."""
    keys: list[str] = []
    for run in runs:
        for _, _, val_key in plots.metric_panels(run):
            if val_key and val_key not in keys:
                keys.append(val_key)
    return keys[:3]


def left_out_of_overlay(cmp: Comparison, keys: list[str]) -> list[str]:
    """``"label (why)"`` for each run with no point on any overlaid curve: it is missing from
    the plot, and the plot alone would not say so."""
    out = []
    for label, run in zip(cmp.labels, cmp.runs):
        if keys and not any(run.series(k)[0] for k in keys):
            reason = (run.summary or {}).get("stop_reason") or (
                "finished" if run.finished else "did not finish"
            )
            out.append(f"{label} (no {', '.join(keys)} recorded; {reason})")
    return out


def _metric_rows(cmp: Comparison) -> list[list[Any]]:
    rows = []
    for m in cmp.metrics:
        row: list[Any] = [m, *(v.get(m, MISSING) for v in cmp.values)]
        if cmp.seed_only:
            ms = cmp.mean_std(m)
            row.append(f"{fmt(ms[0])} ± {fmt(ms[1])}" if ms else MISSING)
        rows.append(row)
    return rows


def rich_tables(cmp: Comparison) -> list[Any]:
    """The comparison as rich tables (metrics; config differences) for the terminal."""
    from rich.table import Table

    metrics = Table(title=f"{len(cmp.runs)} runs", title_justify="left")
    metrics.add_column("metric", overflow="fold")
    for label in cmp.labels:  # run names wrap onto more lines but are never cut short
        metrics.add_column(label, justify="right", overflow="fold")
    if cmp.seed_only:
        metrics.add_column("mean ± std", justify="right")
    for m, row in zip(cmp.metrics, _metric_rows(cmp)):
        best = cmp.best(m)
        cells = [fmt(v) for v in row]
        if best is not None:
            cells[best + 1] = f"[bold green]{cells[best + 1]}[/]"
        metrics.add_row(*cells)
    diff = Table(title="config differences", title_justify="left")
    diff.add_column("key", overflow="fold")
    for label in cmp.labels:
        diff.add_column(label, overflow="fold")
    for k, vals in cmp.config_diff.items():
        diff.add_row(k, *(_short(v) for v in vals))
    if not cmp.config_diff:
        diff.add_row("(identical configs)", *("" for _ in cmp.labels))
    return [metrics, diff]


def _short(v: Any) -> str:
    s = fmt(v) if not isinstance(v, (list, dict)) else str(v)
    return s if len(s) <= 60 else s[:57] + "..."


def write_comparison(cmp: Comparison, out: str | Path) -> Path:
    """A self-contained comparison page at ``out`` (metrics, config differences, overlay).

    >>> write_comparison(compare_runs(["runs/"]), "compare.html")   # doctest: +SKIP
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        png = plots.plot_overlay(cmp.runs, overlay_keys(cmp.runs), Path(tmp) / "overlay.png")
        curves = image(png, "validation curves of every run")
    headers = ["metric", *cmp.labels] + (["mean ± std"] if cmp.seed_only else [])
    diff_rows = [[k, *(_short(v) for v in vals)] for k, vals in cmp.config_diff.items()]
    runs_rows = [
        [label, str(r.path), r.name, "yes" if r.finished else "no"]
        for label, r in zip(cmp.labels, cmp.runs)
    ]
    notes = [f"{label}: {w}" for label, r in zip(cmp.labels, cmp.runs) for w in r.warnings]
    notes += [f"not in the curves: {m}" for m in left_out_of_overlay(cmp, overlay_keys(cmp.runs))]
    body = [
        f"<h1>Comparison of {len(cmp.runs)} runs</h1>",
        f'<p class="meta">written {esc(time.strftime("%Y-%m-%d %H:%M"))}</p>',
        _notes(notes),
        section("Runs", table(["label", "folder", "name", "finished"], runs_rows)),
        section("Metrics", table(headers, _metric_rows(cmp), strong=_best_cols(cmp)), _BEST_NOTE),
        section(
            "Config differences",
            table(["key", *cmp.labels], diff_rows) if diff_rows else "<p>Identical configs.</p>",
        ),
        section("Validation curves", curves),
    ]
    return write_atomic(out, page("trainlab comparison", "\n".join(b for b in body if b)))


_BEST_NOTE = (
    '<p class="meta">Bold: the best run for each figure (lowest for losses, errors and '
    "time; highest otherwise).</p>"
)


def _best_cols(cmp: Comparison) -> list[int | None]:
    # Column 0 holds the metric name: run i sits in column i + 1.
    return [None if (b := cmp.best(m)) is None else b + 1 for m in cmp.metrics]


def _notes(notes: list[str]) -> str:
    if not notes:
        return ""
    return (
        '<div class="warn"><b>Warnings</b><ul>'
        + "".join(f"<li>{esc(n)}</li>" for n in notes)
        + "</ul></div>"
    )

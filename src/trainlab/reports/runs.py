"""``trainlab runs``: one line per run under a folder, sortable and filterable; ``board``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainlab.reports.compare import direction
from trainlab.reports.rundata import ReportError, RunData, find_runs, flatten, load_run

__all__ = ["RunRow", "board_args", "list_runs", "print_wide", "runs_table", "serve_board"]


@dataclass
class RunRow:
    """One run in the listing; ``values`` holds its headline metrics and flattened config."""

    run: RunData
    date: str
    status: str
    key_metric: str
    values: dict[str, Any]


def _row(run: RunData) -> RunRow:
    cfg = flatten(run.config)
    s = run.summary or {}
    best = s.get("best") or {}
    if (s.get("test") or {}).get("test/acc") is not None:
        key = f"test/acc {s['test']['test/acc']:.4g}"
    elif best.get("value") is not None:
        key = f"{best.get('monitor')} {best['value']:.4g}"
    else:
        key = ""
    status = "finished" if run.finished else "did not finish"
    if run.finished and s.get("stop_reason"):
        status = "stopped early"
    cfg_file = run.path / "config.yaml"
    stamp = (cfg_file if cfg_file.is_file() else run.path).stat().st_mtime
    date = time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))
    return RunRow(run, date, status, key, {**cfg, **run.headline()})


def list_runs(
    root: str | Path = "runs",
    *,
    sort: str | None = None,
    reverse: bool = False,
    where: list[str] | None = None,
) -> list[RunRow]:
    """The runs under ``root``, newest first, or sorted by ``sort`` (a metric such as
    ``test/acc``: best first; or a config key such as ``optim.lr``: ascending), keeping those
    matching every ``where`` filter ``key=value`` (values compared as text). Runs without the
    sort key come last.

    >>> rows = list_runs("runs", sort="test/acc", where=["model.name=resnet18"])  # doctest: +SKIP
    """
    rows = [_row(load_run(p)) for p in find_runs([root])]
    for cond in where or []:
        key, sep, want = cond.partition("=")
        if not sep:
            raise ReportError(f"--where {cond}: expected key=value, e.g. model.name=mlp")
        rows = [r for r in rows if str(r.values.get(key)) == want]
    if sort is None:
        return sorted(rows, key=lambda r: r.date, reverse=not reverse)
    have = [r for r in rows if r.values.get(sort) is not None]
    if rows and not have:
        known = sorted({k for r in rows for k in r.run.headline()})
        raise ReportError(f"--sort {sort}: no run has it; metrics: {', '.join(known)}")
    is_metric = any(sort in r.run.headline() for r in have)
    desc = is_metric and direction(sort) == "max"  # best first
    ordered = sorted(have, key=lambda r: _sortable(r.values[sort]), reverse=desc != reverse)
    return ordered + [r for r in rows if r.values.get(sort) is None]


def _sortable(v: Any) -> tuple[int, Any]:
    # Numbers before text, so mixed columns still sort.
    return (0, v) if isinstance(v, (int, float)) else (1, str(v))


def runs_table(rows: list[RunRow], extra: str | None = None) -> Any:
    """A rich table of ``rows`` (``extra``: one more column, e.g. the sort key).

    Run folders wrap onto more lines rather than end in "…" (runs of a sweep differ at the
    end of their names); the recipe name is shown only where a folder does not start with it.
    """
    from rich.table import Table

    t = Table(title=f"{len(rows)} runs", title_justify="left")
    t.add_column("run", overflow="fold")  # wraps, never "…": a sweep's runs differ at the end
    show_name = any(not r.run.path.name.startswith(str(r.run.name)) for r in rows)
    if show_name:
        t.add_column("name", overflow="fold")
    for col in ("date", "model", "data", "epochs", "samples/s", "status", "key metric"):
        t.add_column(col, justify="right" if col in ("epochs", "samples/s") else "left")
    if extra:
        t.add_column(extra, justify="right", no_wrap=True)
    for r in rows:
        cells = [r.run.path.name] + ([str(r.run.name)] if show_name else []) + [
            r.date,
            str(r.values.get("model.name", "")),
            str(r.values.get("data.name", "")),
            str((r.run.summary or {}).get("epochs", "")),
            f"{r.values['samples/s']:,.0f}" if "samples/s" in r.values else "",
            r.status,
            r.key_metric,
        ]  # fmt: skip
        if extra:
            v = r.values.get(extra)
            cells.append(f"{v:.4g}" if isinstance(v, float) else str(v if v is not None else ""))
        t.add_row(*cells)
    return t


def print_wide(console: Any, *renderables: Any) -> None:
    """Print tables whole: on a terminal they fit its width (long names wrap); into a pipe or
    a file (no width to respect) each is as wide as its content, so that no run name is cut
    to the 80 columns rich assumes there."""
    from rich.console import Console
    from rich.measure import Measurement

    for r in renderables:
        out = console
        if not console.is_terminal:  # print clamps to the console's width: a wider console
            wide = console.options.update(max_width=10_000)
            width = max(console.width, Measurement.get(console, wide, r).maximum)
            out = Console(file=console.file, width=width, no_color=console.no_color)
        out.print(r)


def board_args(root: str | Path = "runs", port: int = 6006, host: str = "127.0.0.1") -> list[str]:
    """TensorBoard's flags to serve every run's ``tb/`` under ``root``, bound to ``host``
    (this machine only, by default).

    >>> board_args("runs")
    ['--logdir', 'runs', '--host', '127.0.0.1', '--port', '6006']
    """
    if not Path(root).is_dir():
        raise ReportError(f"{root}: no such folder of runs")
    return ["--logdir", str(root), "--host", host, "--port", str(port)]


def serve_board(root: str | Path = "runs", port: int = 6006, host: str = "127.0.0.1") -> int:
    """Run TensorBoard over ``root`` until interrupted; returns its exit code.

    In this process rather than a child: a signal that stops trainlab stops the server too.
    """
    from tensorboard import program

    board = program.TensorBoard()
    board.configure(argv=[None, *board_args(root, port, host)])
    return int(board.main())

"""``trainlab runs`` (listing, sorting, filtering) and ``trainlab board``'s command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from reports_support import write_run

from trainlab.cli.main import main
from trainlab.reports import ReportError
from trainlab.reports.runs import board_args, list_runs


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    write_run(root / "a", lr=0.1, val_acc=(0.5, 0.6), test={"test/acc": 0.61, "test/loss": 0.9})
    write_run(root / "b", lr=0.3, val_acc=(0.5, 0.9), test={"test/acc": 0.88, "test/loss": 0.4})
    write_run(root / "sweep" / "c", lr=0.2, val_acc=(0.7,), finished=False)  # nested, crashed
    return root


def test_sort_and_filter(runs_dir: Path) -> None:
    by_acc = list_runs(runs_dir, sort="test/acc")
    assert [r.run.path.name for r in by_acc] == ["b", "a", "c"]  # best first, missing last
    by_loss = list_runs(runs_dir, sort="test/loss")
    assert [r.run.path.name for r in by_loss] == ["b", "a", "c"]  # lowest loss first
    by_lr = list_runs(runs_dir, sort="optim.lr", reverse=True)
    assert [r.run.path.name for r in by_lr] == ["b", "c", "a"]
    only = list_runs(runs_dir, where=["optim.lr=0.2"])
    assert [(r.run.path.name, r.status) for r in only] == [("c", "did not finish")]
    assert list_runs(runs_dir, sort="test/acc")[0].key_metric == "test/acc 0.88"
    with pytest.raises(ReportError, match="key=value"):
        list_runs(runs_dir, where=["optim.lr"])
    with pytest.raises(ReportError, match="no run has it; metrics: .*test/acc"):
        list_runs(runs_dir, sort="test/acc5")


def test_runs_cli(runs_dir: Path, capsys) -> None:
    assert main(["runs", str(runs_dir), "--sort", "test/acc"]) == 0
    out = capsys.readouterr().out
    assert out.index("│ b") < out.index("│ a") < out.index("│ c")
    assert main(["runs", str(runs_dir / "nope")]) == 2


def test_board_binds_to_localhost(tmp_path: Path) -> None:
    args = board_args(tmp_path)
    assert args[args.index("--host") + 1] == "127.0.0.1"
    assert args[args.index("--logdir") + 1] == str(tmp_path)
    assert main(["board", str(tmp_path / "missing")]) == 2  # before any server starts

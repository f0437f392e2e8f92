"""``trainlab ensemble RUN1 RUN2 ... [--method mean|vote]``: several trained runs as one model.

``mean`` averages the members' class probabilities (soft voting); ``vote`` takes the majority
of their predicted classes (ties go to the class with the larger summed probability). The
members must share the data section of their recipes, so that they see the same test split in
the same order. The result (members' and ensemble's test accuracy and NLL) is printed and
written to a new folder; the runs are only read.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from trainlab.deploy.source import LoadedRun, load_run
from trainlab.errors import TrainlabError

__all__ = ["EnsembleError", "ensemble_runs", "combine", "METHODS"]

METHODS = ("mean", "vote")


class EnsembleError(TrainlabError):
    """Members that cannot be combined (different data or classes), or a bad method."""


def _test_probs(run: LoadedRun) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, K) probabilities and (N,) labels over the test split, in loader order."""
    ps, ys = [], []
    with torch.no_grad():
        for x, y in run.exp.data.loader("test").iter_epoch(0):
            ps.append(torch.softmax(_logits(run.model, x).float(), -1))
            ys.append(y.cpu())
    return torch.cat(ps), torch.cat(ys)


def _logits(model: torch.nn.Module, x: Any) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return model(x.cpu())
    # Graph data: a node batch (the whole graph and the split's node ids).
    from trainlab.data.graphs import NodeBatch
    from trainlab.tasks.node_classification import NodeClassificationTask

    return NodeClassificationTask().logits(model, NodeBatch((x.graph.cpu(), x.index.cpu())))


def combine(probs: list[torch.Tensor], method: str) -> torch.Tensor:
    """The ensemble's (N, K) scores: mean probabilities, or vote counts (+ a tie-breaker).

    >>> a, b = torch.tensor([[0.9, 0.1]]), torch.tensor([[0.4, 0.6]])
    >>> combine([a, b, torch.tensor([[0.3, 0.7]])], "vote").argmax(-1).item()
    1
    """
    stack = torch.stack(probs)  # (M, N, K)
    mean = stack.mean(0)
    if method == "mean":
        return mean
    k = stack.shape[-1]
    votes = torch.nn.functional.one_hot(stack.argmax(-1), k).sum(0).float()  # (N, K)
    return votes + mean / (len(probs) + 1)  # < 1: breaks ties only


def _data_key(run: LoadedRun) -> dict[str, Any]:
    """The data section without ``seed`` (training-batch shuffling; splits use split_seed)."""
    data = run.cfg.data.model_dump()
    data.pop("seed", None)
    return data


def _metrics(scores: torch.Tensor, y: torch.Tensor, probs: bool) -> dict[str, float | None]:
    acc = float((scores.argmax(-1) == y).float().mean())
    nll = None
    if probs:
        p = scores[torch.arange(len(y)), y].clamp_min(1e-12)
        nll = float(-p.log().mean())
    return {"acc": acc, "nll": nll}


def ensemble_runs(run_dirs: list[str | Path], method: str = "mean", out: str | Path | None = None,
                  console: Any = None) -> dict[str, Any]:  # fmt: skip
    """Test metrics of each member and of their ensemble.

    >>> ensemble_runs(["runs/a", "runs/b", "runs/c"], "mean")["ensemble"]["acc"]  # doctest: +SKIP
    0.9412
    """
    if method not in METHODS:
        raise EnsembleError(f"--method {method}: valid: {', '.join(METHODS)}")
    if len(run_dirs) < 2:
        raise EnsembleError("an ensemble needs at least two runs")
    runs = [load_run(r) for r in run_dirs]
    first = runs[0]
    for r in runs[1:]:
        if _data_key(r) != _data_key(first):
            raise EnsembleError(f"{r.run_dir}: its data section differs from {first.run_dir}'s; "
                                "members must be trained on the same data")  # fmt: skip
        if r.spec["classes"] != first.spec["classes"]:
            raise EnsembleError(f"{r.run_dir}: its classes differ from {first.run_dir}'s")
    members, probs, labels = [], [], None
    for r in runs:
        p, y = _test_probs(r)
        if labels is not None and not torch.equal(labels, y):
            raise EnsembleError(f"{r.run_dir}: its test split differs from {first.run_dir}'s")
        labels = y
        probs.append(p)
        members.append({"run": str(r.run_dir), "model": r.spec["model"], **_metrics(p, y, True)})
    assert labels is not None
    ens = _metrics(combine(probs, method), labels, method == "mean")
    report = {"method": method, "n_test": len(labels), "members": members, "ensemble": ens}
    odir = Path(out) if out is not None else Path("exports") / f"ensemble-{len(runs)}-{method}"
    odir.mkdir(parents=True, exist_ok=True)
    (odir / "ensemble.json").write_text(json.dumps(report, indent=2))
    report["file"] = str(odir / "ensemble.json")
    _print(report, console)
    return report


def _print(report: dict[str, Any], console: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(title=f"ensemble of {len(report['members'])} runs ({report['method']}), "
                  f"{report['n_test']} test samples")  # fmt: skip
    for col in ("model", "run", "test acc", "test nll"):
        table.add_column(col, justify="right" if col.startswith("test") else "left")

    def fmt(v: float | None) -> str:
        return "-" if v is None or math.isnan(v) else f"{v:.4f}"

    for m in report["members"]:
        table.add_row(m["model"], Path(m["run"]).name, fmt(m["acc"]), fmt(m["nll"]))
    e = report["ensemble"]
    table.add_row("ensemble", report["method"], fmt(e["acc"]), fmt(e["nll"]), style="bold")
    console.print(table)

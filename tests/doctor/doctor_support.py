"""Hand-written run directories: each shows one symptom the run rules must recognise."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml

CASES = Path(__file__).parent / "cases"  # the broken recipes and their plug-in

CONFIG = {
    "name": "handmade", "seed": 0,
    "data": {"name": "digits", "batch_size": 64},
    "model": {"name": "mlp", "hidden": [64], "num_classes": 10},
    "task": {"name": "classification"},
    "optim": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
    "sched": None,
    "train": {"epochs": 10, "monitor": "val/acc"},
    "callbacks": [],
}  # fmt: skip


def write_run(
    path: Path,
    *,
    train_loss: list[float],
    val_loss: list[float],
    train_acc: list[float],
    val_acc: list[float],
    step_loss: list[float] | None = None,
    norms: list[dict[str, Any]] | None = None,
    per_class: list[float] | None = None,
    confusion: list[list[int]] | None = None,
    test_acc: float = 0.9,
    test_loss: float = 0.3,
    config: dict[str, Any] | None = None,
    summary: dict[str, Any] | None = None,
) -> Path:
    """A run directory with the files ``trainlab train`` writes (the ones the doctor reads)."""
    path.mkdir(parents=True)
    cfg = {**CONFIG, **(config or {})}
    (path / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    steps_per_epoch = 20
    lines = []
    for i, loss in enumerate(step_loss or []):
        lines.append({"step": 5 * (i + 1), "epoch": 5 * i // steps_per_epoch,
                      "train/loss": loss, "lr": cfg["optim"]["lr"]})  # fmt: skip
    cm = confusion or [[27 if i == j else 0 for j in range(10)] for i in range(10)]
    for e, (tl, vl, ta, va) in enumerate(zip(train_loss, val_loss, train_acc, val_acc,
                                              strict=True), 1):  # fmt: skip
        lines.append({"step": e * steps_per_epoch, "epoch": e, "train/loss_epoch": tl,
                      "train/acc_epoch": ta, "val/loss": vl, "val/acc": va,
                      "val/confusion": cm, "lr": cfg["optim"]["lr"]})  # fmt: skip
    lines.sort(key=lambda r: (r["step"], "val/loss" in r))
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    if norms:
        (path / "norms.jsonl").write_text("".join(json.dumps(r) + "\n" for r in norms))
    test = {"test/acc": test_acc, "test/loss": test_loss, "test/confusion": cm,
            "test/acc_per_class": per_class or [test_acc] * len(cm)}  # fmt: skip
    (path / "eval_test.json").write_text(json.dumps(test))
    summ = {"name": "handmade", "epochs": len(train_loss), "steps": 20 * len(train_loss),
            "stop_reason": None, "rollbacks": 0, "best": {"monitor": "val/acc",
            "value": max(val_acc), "epoch": 1 + val_acc.index(max(val_acc))},
            **(summary or {})}  # fmt: skip
    (path / "summary.json").write_text(json.dumps(summ))
    return path


def healthy(path: Path, **kw: Any) -> Path:
    """A run that learns normally: losses fall together, small gap."""
    n = 10
    tl = [2.0 * math.exp(-0.4 * e) + 0.1 for e in range(n)]
    defaults: dict[str, Any] = dict(
        train_loss=tl, val_loss=[x + 0.02 for x in tl],
        train_acc=[min(0.97, 0.5 + 0.05 * e) for e in range(n)],
        val_acc=[min(0.95, 0.49 + 0.05 * e) for e in range(n)],
        step_loss=[2.3 * math.exp(-0.05 * i) + 0.1 for i in range(40)], test_acc=0.94,
        test_loss=0.2,
        norms=[{"step": 10 * i, "epoch": i // 2, "weight": {"net.1": 5.0 + 0.1 * i,
                "net.3": 2.0 + 0.05 * i}, "grad": {"net.1": 0.5, "net.3": 0.3}}
               for i in range(8)],
    )  # fmt: skip
    defaults.update(kw)
    return write_run(path, **defaults)

"""Helpers for the report tests: a tiny recipe and hand-written run directories.

A module with its own name rather than ``conftest``: test modules import from it, and several
``conftest`` modules in one session would shadow each other.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

TINY = {
    "name": "tiny",
    "seed": 0,
    "data": {
        "name": "synthetic",
        "num_classes": 3,
        "shape": [1, 6, 6],
        "n_train": 96,
        "n_val": 48,
        "n_test": 48,
        "batch_size": 32,
        "noise": 2.0,
    },
    "model": {"name": "mlp", "hidden": [16]},
    "optim": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
    "train": {
        "epochs": 2,
        "log_every": 1,
        "precision": "fp32",
        "keep_checkpoints": 2,
        "tensorboard": True,
        "hist_every": 2,
        "report": False,
    },
}
HIST_EVERY = 2


def write_run(
    path: Path,
    *,
    name: str = "fixture",
    lr: float = 0.1,
    seed: int = 0,
    val_acc: tuple[float, ...] = (0.5, 0.7, 0.8),
    finished: bool = True,
    test: dict[str, Any] | None = None,
) -> Path:
    """A run directory written by hand: config, metrics.jsonl (3 steps per epoch), summary."""
    path.mkdir(parents=True)
    config = {
        "name": name,
        "seed": seed,
        "data": {"name": "synthetic", "seed": seed},
        "model": {"name": "mlp"},
        "optim": {"name": "sgd", "lr": lr},
    }
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    (path / "env.json").write_text(json.dumps({"python": "3.11", "torch": "2.x"}))
    records, history = [], []
    for e, acc in enumerate(val_acc, start=1):
        for s in range(3):
            step = (e - 1) * 3 + s + 1
            records.append({"step": step, "epoch": e - 1, "train/loss": 1.0 / step, "lr": lr})
        epoch = {
            "train/loss_epoch": 1.0 / e,
            "train/acc_epoch": acc + 0.05,
            "val/loss": 1.2 / e,
            "val/acc": acc,
        }
        records.append({"step": 3 * e, "epoch": e, **epoch})
        history.append({"epoch": e, **epoch})
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    if finished:
        best = max(range(len(val_acc)), key=lambda i: val_acc[i])
        summary = {
            "name": name,
            "epochs": len(val_acc),
            "steps": 3 * len(val_acc),
            "wall_s": 1.5,
            "stop_reason": None,
            "final": history[-1],
            "best": {"monitor": "val/acc", "value": val_acc[best], "epoch": best + 1},
            "history": history,
        }
        if test:
            summary["test"] = {k: v for k, v in test.items() if not isinstance(v, list)}
            (path / "eval_test.json").write_text(json.dumps(test))
        (path / "summary.json").write_text(json.dumps(summary))
    return path

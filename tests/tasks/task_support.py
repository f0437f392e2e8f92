"""Shared helpers for the task tests (imported by name: tests/tasks is on sys.path)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from trainlab.config.load import parse_config
from trainlab.experiment import build_experiment

__all__ = ["REPO", "records", "untrained_eval"]

REPO = Path(__file__).resolve().parents[2]


def records(run_dir: Path) -> list[dict[str, Any]]:
    """The run's metrics.jsonl records, in order."""
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def untrained_eval(text: str, split: str = "val") -> dict[str, Any]:
    """Metrics of the recipe's freshly initialised model (same seed as its run) on ``split``."""
    exp = build_experiment(parse_config(yaml.safe_load(text)))
    if callable(getattr(exp.task, "setup", None)):
        exp.task.setup(exp.model, exp.trainer.device)
    metrics = exp.task.metrics(exp.data.num_classes).to(exp.trainer.device)
    return exp.trainer.evaluate(exp.model, exp.task, exp.data.loader(split), split, metrics)

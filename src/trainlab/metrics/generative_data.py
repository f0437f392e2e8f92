"""The run-reading side of :mod:`trainlab.metrics.generative`: a classifier run's feature
extractor, and real images of its data in [0, 1].

>>> extractor, real = classifier_and_images("runs/lenet5", n=1000)   # doctest: +SKIP
>>> real.shape, float(real.max()) <= 1.0                             # doctest: +SKIP
(torch.Size([1000, 1, 28, 28]), True)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainlab.errors import CheckpointError, ConfigError
from trainlab.metrics.generative import FeatureExtractor

__all__ = ["classifier_and_images", "load_classifier", "real_images"]


class _Scale(nn.Module):
    """Images in [0, 1] → the data's stored units (×255 for uint8 pixels)."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def _stored(data: Any, split: str) -> torch.Tensor:
    splits = getattr(data, "splits", None)
    if not isinstance(splits, dict) or split not in splits:
        have = ", ".join(splits) if isinstance(splits, dict) else "none"
        raise ConfigError(
            f"gen-score: the classifier's data has no in-memory '{split}' split "
            f"(splits: {have}); use an image data set such as fashion_mnist"
        )
    x = splits[split][0]
    if x.dim() != 4:
        raise ConfigError(
            f"gen-score: the classifier's data is not images (shape {tuple(x.shape)})"
        )
    return x


def _value_scale(data: Any) -> float:
    x = data.splits["train"][0]
    return 255.0 if x.dtype == torch.uint8 else float(x.max()) or 1.0


def real_images(data: Any, n: int, split: str = "test", seed: int = 0) -> torch.Tensor:
    """``n`` images of ``split`` (a seeded random choice; all when the split is smaller) of a
    set-up in-memory data module, as float in [0, 1], on the CPU."""
    x = _stored(data, split)
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]
    return (x[idx.to(x.device)].float() / _value_scale(data)).clamp(0, 1).cpu()


def _load_classifier(run_dir: Path) -> tuple[nn.Module, Any]:
    from trainlab.deploy.source import load_model_only

    model, cfg = load_model_only(run_dir)
    if cfg.task.name != "classification":
        raise ConfigError(
            f"gen-score: --classifier {run_dir} is a '{cfg.task.name}' run; give a trained "
            "classification run (e.g. lenet5 on the same data)"
        )
    return model, cfg


def load_classifier(run_dir: str | Path) -> tuple[FeatureExtractor, Any]:
    """The feature extractor of a classification run (best weights; its training split's
    normalisation in front, so it takes images in [0, 1]) and its data module, set up on the
    CPU."""
    from trainlab.experiment import build_data
    from trainlab.loading import Normalize

    rdir = Path(run_dir)
    model, cfg = _load_classifier(rdir)
    info_path = rdir / "data.json"
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    if not info.get("mean") or not info.get("std"):
        raise CheckpointError(f"{rdir}: data.json has no normalisation statistics (mean, std)")
    data = build_data(cfg.data.name, default_seed=cfg.seed, **cfg.data.options())
    data.setup("cpu")
    prepare = nn.Sequential(_Scale(_value_scale(data)), Normalize(info["mean"], info["std"]))
    return FeatureExtractor(model, prepare), data


def classifier_and_images(
    run_dir: str | Path, n: int = 2000, split: str = "test", seed: int = 0
) -> tuple[FeatureExtractor, torch.Tensor]:
    """:func:`load_classifier`'s extractor and ``n`` real images of its data's ``split``."""
    extractor, data = load_classifier(run_dir)
    return extractor, real_images(data, n, split, seed)

"""A trained run back as a plain PyTorch module, without trainlab's CLI.

>>> import trainlab                                             # doctest: +SKIP
>>> model = trainlab.load_model("runs/fashion_mnist-20261122-043541")  # doctest: +SKIP
>>> probs = model(x).softmax(-1)     # x normalised as in training  # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from trainlab.errors import CheckpointError

__all__ = ["load_model", "Normalize"]


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel (dimension 1), in the units the data was stored in."""

    def __init__(self, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean))
        self.register_buffer("std", torch.tensor(std))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)  # (1, C, 1, 1) for images, (1, F) for tables
        return (x.float() - self.mean.view(shape)) / self.std.view(shape)


def load_model(
    run_dir: str | Path,
    which: str = "best",
    *,
    normalize: bool = False,
    device: str | torch.device = "cpu",
) -> nn.Module:
    """The model of a run with its ``best`` (or ``latest``) weights, in eval mode.

    The model is rebuilt from the run's ``config.yaml`` (every option spelled out there, so no
    data is loaded); plug-ins the run recorded in ``plugins.json`` are imported and checked first.
    It expects inputs as the training loop fed them, i.e. normalised with the training split's
    statistics; ``normalize=True`` puts that normalisation (from ``data.json``) in front, so that
    the model takes data in its stored units (e.g. 0–255 pixels of an in-memory dataset).
    EMA weights are used when the run kept them.

    >>> model = load_model("runs/my_run", normalize=True)   # doctest: +SKIP
    >>> model(torch.rand(8, 1, 28, 28) * 255).argmax(-1)    # doctest: +SKIP
    """
    from trainlab.deploy.source import load_model_only

    # The same rebuild as export/quantize/distillation use (structured-pruned runs included);
    # gradients stay on here: a user may fine-tune what they load.
    model, _ = load_model_only(run_dir, which)
    model.requires_grad_(True)
    if normalize:
        model = nn.Sequential(_normalizer(Path(run_dir)), model)
    return model.to(device).eval()


def _normalizer(rdir: Path) -> Normalize:
    info = json.loads((rdir / "data.json").read_text()) if (rdir / "data.json").is_file() else {}
    if not info.get("mean") or not info.get("std"):
        raise CheckpointError(
            f"{rdir}: data.json has no normalisation statistics (mean, std); this data source "
            "normalises in its own transforms: feed the model what its loader yields"
        )
    return Normalize(info["mean"], info["std"])

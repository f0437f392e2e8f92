"""Small tensor helpers shared by the sequence and generative tasks.

Everything here stays on the device: no ``.item()``, no boolean indexing (which would need the
host to know how many elements survive), so the trainer's hot path keeps its no-sync promise.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel

__all__ = ["bare_model", "masked_mean", "shift_right", "to_unit_range", "token_accuracy"]


def bare_model(model: nn.Module) -> nn.Module:
    """The user's module inside DDP / EMA wrappers: what ``generate`` or ``generator`` live on.

    >>> type(bare_model(AveragedModel(nn.Linear(2, 2)))).__name__  # EMA holds a copy
    'Linear'
    """
    while isinstance(model, (DistributedDataParallel, AveragedModel)):
        model = model.module
    return model


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` is True, as a scalar tensor (0 when nothing is masked in).

    >>> masked_mean(torch.tensor([1.0, 2.0, 9.0]), torch.tensor([True, True, False]))
    tensor(1.5000)
    """
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def token_accuracy(logits: torch.Tensor, target: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """Share of target tokens (not ``ignore_index``) whose argmax prediction is right.

    ``logits`` (N, T, V), ``target`` (N, T) → scalar tensor.
    """
    keep = target != ignore_index
    return masked_mean((logits.argmax(-1) == target).float(), keep)


def shift_right(y: torch.Tensor, bos_idx: int) -> torch.Tensor:
    """Decoder input for teacher forcing: ``[BOS, y_1, …, y_{T-1}]`` from ``y`` (N, T).

    >>> shift_right(torch.tensor([[5, 6, 7]]), 1)
    tensor([[1, 5, 6]])
    """
    bos = torch.full_like(y[:, :1], bos_idx)
    return torch.cat([bos, y[:, :-1]], dim=1)


def to_unit_range(x: torch.Tensor) -> torch.Tensor:
    """Map a batch affinely onto [0, 1] with its own minimum and maximum.

    The image data modules standardise pixels (per-channel mean/std of the training split), but
    sigmoid decoders (autoencoder, VAE) and tanh generators (GAN) produce a fixed range. A
    standardised batch is an affine image of the raw pixels, and nearly every batch holds both
    the background value and the brightest value, so min–max per batch recovers the raw scale
    without the task having to know the data's statistics.

    >>> to_unit_range(torch.tensor([-1.0, 0.0, 3.0]))
    tensor([0.0000, 0.2500, 1.0000])
    """
    x = x.float()
    lo, hi = x.amin(), x.amax()
    return (x - lo) / (hi - lo).clamp_min(1e-8)

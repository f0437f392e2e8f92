"""Deliberately broken pieces for the doctor's case recipes (not part of trainlab).

Load with ``trainlab doctor --import tests/doctor/cases/faults.py RECIPE``. Registers:

- data ``faulty_digits``: scikit-learn's digits with one injected fault: ``unnormalized``
  (0-255 pixel values, no standardisation), ``shuffled_labels`` (labels permuted: no signal),
  ``leaky_val`` (the validation split is a copy of training samples), ``imbalance`` (binary
  "is it a 0?" with 95/5 classes);
- model ``custom_act_mlp``: an MLP whose activation is a custom ``autograd.Function``
  (softplus) with, when ``wrong_backward`` is true, a backward that is off by a factor.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from trainlab.data.base import DATA, register_data
from trainlab.data.memory import TensorDataModule
from trainlab.data.splits import holdout_split
from trainlab.models.registry import MODELS, register_model

FAULTS = ("none", "unnormalized", "shuffled_labels", "leaky_val", "imbalance")


class FaultyDigits(TensorDataModule):
    """Digits (1, 8, 8) in 0..16, split 70/15/15, with ``fault`` injected."""

    def __init__(self, fault: str, data_seed: int, **kw: Any) -> None:
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS}, got {fault!r}")
        super().__init__(normalize=fault != "unnormalized", **kw)
        self.fault, self.data_seed = fault, data_seed
        self.num_classes = 2 if fault == "imbalance" else 10

    def load(self) -> None:
        from sklearn.datasets import load_digits

        b = load_digits()
        x = torch.from_numpy(b.data.astype(np.float32)).view(-1, 1, 8, 8)
        y = torch.from_numpy(b.target.astype(np.int64))
        gen = torch.Generator().manual_seed(self.data_seed)
        if self.fault == "unnormalized":
            x = x * 16.0  # 0..256: raw 8-bit pixel values
        if self.fault == "imbalance":
            x, y = _imbalanced(x, y, gen)
        idx = holdout_split(y.numpy(), val_fraction=0.15, test_fraction=0.15,
                            seed=self.data_seed, stratify=True)  # fmt: skip
        self.splits = {k: (x[torch.from_numpy(i)], y[torch.from_numpy(i)]) for k, i in idx.items()}
        if self.fault == "shuffled_labels":
            self.splits = {k: (sx, sy[torch.randperm(len(sy), generator=gen)])
                           for k, (sx, sy) in self.splits.items()}  # fmt: skip
        if self.fault == "leaky_val":
            tx, ty = self.splits["train"]
            pick = torch.randperm(len(tx), generator=gen)[: len(self.splits["val"][0])]
            self.splits["val"] = (tx[pick].clone(), ty[pick].clone())


def _imbalanced(x: torch.Tensor, y: torch.Tensor, gen: torch.Generator) -> tuple[Any, Any]:
    """Binary labels (digit 0 → class 1), positives subsampled to 5 % of the samples."""
    pos, neg = (y == 0).nonzero().squeeze(1), (y != 0).nonzero().squeeze(1)
    keep = pos[torch.randperm(len(pos), generator=gen)[: len(neg) * 5 // 95]]
    idx = torch.cat([neg, keep])
    return x[idx], (y[idx] == 0).long()


class _SoftplusFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, wrong: bool) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.wrong = wrong
        return nn.functional.softplus(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (x,) = ctx.saved_tensors
        d = torch.sigmoid(x)
        if ctx.wrong:
            d = 1.0 - d  # the bug: sigmoid(-x) instead of sigmoid(x)
        return grad * d, None


class CustomSoftplus(nn.Module):
    def __init__(self, wrong: bool) -> None:
        super().__init__()
        self.wrong = wrong

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _SoftplusFn.apply(x, self.wrong)


def _register() -> None:
    if "faulty_digits" not in DATA:

        @register_data("faulty_digits")
        def faulty_digits(*, fault: str = "none", batch_size: int = 64,
                          eval_batch_size: int = 512, data_seed: int = 0,
                          seed: int = 0) -> FaultyDigits:  # fmt: skip
            """Digits with one injected fault (see tests/doctor/cases/faults.py)."""
            return FaultyDigits(fault, data_seed, batch_size=batch_size,
                                eval_batch_size=eval_batch_size, seed=seed)  # fmt: skip

    if "custom_act_mlp" not in MODELS:

        @register_model("custom_act_mlp")
        def custom_act_mlp(
            *,
            in_features: int = 64,
            hidden: list[int] = [64],  # noqa: B006
            num_classes: int = 10,
            wrong_backward: bool = False,
        ) -> nn.Module:
            """An MLP whose activation is a custom autograd.Function."""
            layers: list[nn.Module] = [nn.Flatten()]
            width = in_features
            for h in hidden:
                layers += [nn.Linear(width, h), CustomSoftplus(wrong_backward)]
                width = h
            return nn.Sequential(*layers, nn.Linear(width, num_classes))


_register()

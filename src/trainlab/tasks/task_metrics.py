"""torchmetrics metrics that the generative and metric-learning tasks need and torchmetrics lacks.

Imported lazily from the tasks' ``metrics()`` (torchmetrics takes seconds to import). Each one
keeps sums or concatenated tensors as torchmetrics states, so ``compute()`` reduces them across
ranks like any built-in metric.
"""

from __future__ import annotations

from typing import Literal

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

__all__ = ["ColumnMean", "MomentGap", "NearestNeighbourAccuracy"]


class ColumnMean(Metric):
    """Mean over samples of column ``index`` of per-sample figures ``preds`` (N, K).

    Lets a task report several per-sample terms (a VAE's reconstruction and KL) through one
    ``metrics.update(preds, target)`` call; ``target`` is ignored.

    >>> m = ColumnMean(1)
    >>> m.update(torch.tensor([[1.0, 2.0], [3.0, 4.0]]), None)
    >>> m.compute()
    tensor(3.)
    """

    full_state_update = False

    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index
        self.add_state("total", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: object = None) -> None:
        col = preds[:, self.index].double()
        self.total += col.sum()
        self.count += col.numel()

    def compute(self) -> torch.Tensor:
        return (self.total / self.count.clamp_min(1.0)).float()


class MomentGap(Metric):
    """How far generated samples' per-pixel statistics are from the real data's.

    ``preds``: generated samples (N, …), ``target``: real samples (N, …), same shape. Returns the
    root-mean-square over pixels of the difference between the per-pixel means (``stat="mean"``)
    or standard deviations (``stat="std"``), accumulated over the whole split. A generator that
    has collapsed to one image keeps a large ``std`` gap; one that learned the data drives both
    towards the noise floor of the split size.

    >>> m = MomentGap("mean")
    >>> m.update(torch.zeros(4, 2), torch.ones(4, 2))
    >>> m.compute()
    tensor(1.)
    """

    full_state_update = False

    def __init__(self, stat: Literal["mean", "std"] = "mean") -> None:
        super().__init__()
        self.stat = stat
        for name in ("sum_fake", "sq_fake", "sum_real", "sq_real"):
            self.add_state(name, default=torch.zeros(0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        fake, real = preds.flatten(1).double(), target.flatten(1).double()  # (N, D)
        if self.sum_fake.numel() == 0:  # first batch fixes the pixel count D
            zeros = torch.zeros(fake.shape[1], dtype=torch.float64, device=fake.device)
            self.sum_fake, self.sq_fake = zeros.clone(), zeros.clone()
            self.sum_real, self.sq_real = zeros.clone(), zeros.clone()
        self.sum_fake += fake.sum(0)
        self.sq_fake += fake.pow(2).sum(0)
        self.sum_real += real.sum(0)
        self.sq_real += real.pow(2).sum(0)
        self.count += fake.shape[0]

    def compute(self) -> torch.Tensor:
        n = self.count.clamp_min(1.0)
        mean_f, mean_r = self.sum_fake / n, self.sum_real / n
        if self.stat == "mean":
            gap = mean_f - mean_r
        else:  # population std per pixel; clamp: rounding can make E[x²] − E[x]² slightly < 0
            std_f = (self.sq_fake / n - mean_f.pow(2)).clamp_min(0).sqrt()
            std_r = (self.sq_real / n - mean_r.pow(2)).clamp_min(0).sqrt()
            gap = std_f - std_r
        return gap.pow(2).mean().sqrt().float()


class NearestNeighbourAccuracy(Metric):
    """Leave-one-out 1-nearest-neighbour accuracy of embeddings over the whole split.

    ``preds``: embeddings (N, D), ``target``: labels (N,). Each sample is classified by the label
    of its closest *other* sample (Euclidean distance); distances are computed in blocks of
    ``chunk`` rows so memory stays at chunk × N floats.

    >>> m = NearestNeighbourAccuracy()
    >>> m.update(torch.tensor([[0.0], [0.1], [5.0], [5.1]]), torch.tensor([0, 0, 1, 1]))
    >>> m.compute()
    tensor(1.)
    """

    full_state_update = False

    def __init__(self, chunk: int = 1024) -> None:
        super().__init__()
        self.chunk = chunk
        self.add_state("embeddings", default=[], dist_reduce_fx="cat")
        self.add_state("labels", default=[], dist_reduce_fx="cat")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        self.embeddings.append(preds.detach().float())
        self.labels.append(target.detach())

    def compute(self) -> torch.Tensor:
        emb, lab = dim_zero_cat(self.embeddings), dim_zero_cat(self.labels)
        n = emb.shape[0]
        if n < 2:
            return torch.tensor(float("nan"), device=emb.device)
        correct = torch.zeros((), device=emb.device)
        for start in range(0, n, self.chunk):
            d = torch.cdist(emb[start : start + self.chunk], emb)  # (chunk, N)
            rows = torch.arange(d.shape[0], device=emb.device)
            d[rows, rows + start] = float("inf")  # never one's own neighbour
            correct += (lab[d.argmin(1)] == lab[start : start + self.chunk]).sum()
        return correct / n

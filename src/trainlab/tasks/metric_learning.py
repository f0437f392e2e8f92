"""Metric learning with the triplet loss and in-batch mining (Schroff et al., 2015, FaceNet;
Hermans et al., 2017, "In defense of the triplet loss").

Batches are ordinary labelled data ``(x, y)``; the model (``siamese``, or any network that
returns embeddings (N, D)) embeds every sample once, and triplets (anchor, positive of the same
class, negative of another class) are mined from the batch's (N, N) distance matrix instead of
being sampled up front:

- ``all`` (batch-all, the default): every valid triplet, averaged over those with a non-zero
  loss (averaging over all of them would let the many easy triplets dilute the gradient);
- ``hard`` (batch-hard): per anchor, its farthest positive and its nearest negative —
  one triplet per anchor, ``max(0, d(a, p) − d(a, n) + margin)`` averaged over anchors that
  have both. From a random start it can collapse every embedding onto one point (loss stuck
  at ``margin``, ``train/d_pos`` ≈ ``train/d_neg``: watch these extras); it suits fine-tuning
  an embedding that already separates the classes somewhat.

Logged per step: ``train/active`` (share of mined triplets still violating the margin),
``train/d_pos`` and ``train/d_neg`` (mean mined distances). Evaluation reports ``val/knn_acc``:
leave-one-out 1-nearest-neighbour accuracy of the embeddings over the whole split.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.tasks.base import StepOutput, register_task
from trainlab.tasks.common import masked_mean

if TYPE_CHECKING:
    from torchmetrics import MetricCollection

__all__ = ["TripletTask", "pairwise_distances", "triplet"]

Batch = tuple[torch.Tensor, torch.Tensor]
Mining = Literal["hard", "all"]


def pairwise_distances(e: torch.Tensor) -> torch.Tensor:
    """Euclidean distances (N, N) between rows of ``e`` (N, D).

    Through ‖a‖² + ‖b‖² − 2a·b (one matmul); clamped before the square root, whose gradient is
    infinite at 0 (the diagonal).

    >>> pairwise_distances(torch.tensor([[0.0, 0.0], [3.0, 4.0]]))
    tensor([[0., 5.],
            [5., 0.]])
    """
    sq = e.pow(2).sum(1)
    d2 = sq[:, None] + sq[None, :] - 2 * e @ e.T
    d = d2.clamp_min(1e-12).sqrt()
    return d * (
        1 - torch.eye(len(e), device=e.device, dtype=e.dtype)
    )  # exact zeros on the diagonal


def _masks(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    same = y[:, None] == y[None, :]  # (N, N)
    eye = torch.eye(len(y), dtype=torch.bool, device=y.device)
    return same & ~eye, ~same  # positives (not oneself), negatives


def batch_hard(d: torch.Tensor, y: torch.Tensor, margin: float) -> dict[str, torch.Tensor]:
    """Per anchor: farthest positive, nearest negative. Returns loss and figures to log."""
    pos, neg = _masks(y)
    d_pos = d.masked_fill(~pos, 0.0).amax(1)  # distances are ≥ 0: 0 never wins the max
    d_neg = d.masked_fill(~neg, float("inf")).amin(1)
    valid = pos.any(1) & neg.any(1)  # an anchor alone in its class, or a one-class batch: none
    losses = torch.where(valid, (d_pos - d_neg + margin).clamp_min(0), torch.zeros_like(d_pos))
    return {
        "loss": masked_mean(losses, valid),
        "active": masked_mean((losses > 0).float(), valid),
        "d_pos": masked_mean(d_pos, valid),
        "d_neg": masked_mean(torch.where(valid, d_neg, torch.zeros_like(d_neg)), valid),
    }


def batch_all(d: torch.Tensor, y: torch.Tensor, margin: float) -> dict[str, torch.Tensor]:
    """Every (anchor, positive, negative) of the batch: an (N, N, N) tensor of losses."""
    pos, neg = _masks(y)
    valid = pos[:, :, None] & neg[:, None, :]  # [a, p, n]
    losses = (d[:, :, None] - d[:, None, :] + margin).clamp_min(0) * valid
    active = (losses > 0).float()
    return {
        "loss": losses.sum() / active.sum().clamp_min(1.0),
        "active": masked_mean(active, valid),
        "d_pos": masked_mean(d, pos),
        "d_neg": masked_mean(d, neg),
    }


class TripletTask:
    """Triplet margin loss over in-batch mined triplets; ``val/knn_acc`` of the embeddings.

    >>> e = nn.Linear(4, 3)
    >>> out = TripletTask().train_step(e, (torch.randn(8, 4), torch.tensor([0, 1] * 4)))
    >>> sorted(out.extras)
    ['active', 'd_neg', 'd_pos']
    """

    def __init__(self, margin: float = 0.2, mining: Mining = "all") -> None:
        if margin < 0:
            raise ConfigError(f"task.margin: must be ≥ 0 (got {margin})")
        if mining not in ("hard", "all"):
            raise ConfigError(f"task.mining: '{mining}' is not a mining mode; valid: all, hard")
        self.margin = margin
        self.mine = batch_hard if mining == "hard" else batch_all

    def _terms(
        self, model: nn.Module, batch: Batch
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x, y = batch
        e = model(x).float()  # (N, D)
        if e.dim() != 2:
            raise ConfigError(
                f"task triplet: the model must return embeddings (N, D), got {tuple(e.shape)}"
            )
        return e, self.mine(pairwise_distances(e), y, self.margin)

    def train_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        _, terms = self._terms(model, batch)
        extras = {k: v.detach() for k, v in terms.items() if k != "loss"}
        # preds stay None: embeddings are no class scores, the trainer must not take argmax.
        return StepOutput(terms["loss"], extras=extras)

    def eval_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        e, terms = self._terms(model, batch)
        return StepOutput(terms["loss"], e, batch[1])

    def metrics(self, num_classes: int | None) -> MetricCollection:
        from torchmetrics import MetricCollection

        from trainlab.tasks.task_metrics import NearestNeighbourAccuracy

        if not num_classes:
            raise ConfigError("task triplet: needs labelled data (num_classes) to mine triplets")
        return MetricCollection({"knn_acc": NearestNeighbourAccuracy()})


@register_task("triplet")
def triplet(*, margin: float = 0.2, mining: Mining = "all") -> TripletTask:
    """Embedding learning (``siamese``): triplet margin loss over triplets mined in each batch
    (``all``: batch-all, ``hard``: batch-hard); ``val/knn_acc`` is 1-NN accuracy."""
    return TripletTask(margin, mining)

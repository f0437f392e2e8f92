"""SimCLR: contrastive self-supervised learning from two views of each image (Chen et al., 2020).

Each training batch ``x`` (N, C, H, W) becomes two random views (:mod:`trainlab.data.views`:
crop + resize, flip, intensity jitter); the model (``simclr``: encoder + projection head) maps
all 2N views in one forward pass to projections z, and the NT-Xent loss asks each view to pick
its partner out of the 2N − 1 others. Labels are never read in training.

NT-Xent (normalised temperature-scaled cross-entropy) for a positive pair (i, j):
``ℓ(i, j) = −log( exp(sim(z_i, z_j)/τ) / Σ_{k≠i} exp(sim(z_i, z_k)/τ) )`` with cosine ``sim``,
averaged over all 2N ordered pairs.

Logged per step: ``train/pos_sim`` (mean cosine similarity of the positive pairs) and
``train/contrast_acc`` (share of views whose most similar other view is their partner).
Evaluation makes its views from a private RNG seeded with ``eval_seed`` (the same views every
evaluation, the training RNG untouched) and, when the data has labels, reports
``<split>/knn_acc``: leave-one-out 1-nearest-neighbour accuracy of the encoder's features
``model.encode(x)`` of the unaugmented images — labels used for that figure only.
The loss's scale depends on the batch (chance level is log(2N − 1)): ``val/loss``, over
``eval_batch_size`` images per batch, is comparable across evaluations, not with ``train/loss``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.data.views import ViewSpec, two_views
from trainlab.errors import ConfigError
from trainlab.tasks.base import StepOutput, register_task
from trainlab.tasks.common import bare_model

if TYPE_CHECKING:
    from torchmetrics import MetricCollection

__all__ = ["SimCLRTask", "nt_xent", "simclr"]

Batch = tuple[torch.Tensor, torch.Tensor]


def _logits_and_targets(
    z1: torch.Tensor, z2: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)  # (2N, D) on the unit sphere
    n = z1.shape[0]
    sim = z @ z.T / temperature  # (2N, 2N) cosine similarities / τ
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    # View i's partner: i + N for the first views, i − N for the second.
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return sim, targets


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """NT-Xent loss of two batches of projections (N, D), row i of each a positive pair.

    Every other of the 2N views is a negative; a view is never compared with itself.

    >>> z = torch.eye(4)                       # identical views, all samples orthogonal
    >>> round(float(nt_xent(z, z, 1.0)), 4)    # log(1 + (2N − 2) e^{−1/τ}), N = 4
    1.1654
    >>> round(float(nt_xent(z[:2], z[2:], 1.0)), 4)   # partners orthogonal too: log(2N − 1)
    1.0986
    """
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(f"nt_xent: two (N, D) batches, got {tuple(z1.shape)}, {tuple(z2.shape)}")
    sim, targets = _logits_and_targets(z1, z2, temperature)
    return F.cross_entropy(sim, targets)


class SimCLRTask:
    """NT-Xent on two random views per image; ``knn_acc`` of the encoder's features.

    >>> from trainlab.models import create_model
    >>> model = create_model("simclr", encoder="lenet5", hidden_dim=32, projection_dim=16)
    >>> out = SimCLRTask().train_step(model, (torch.randn(8, 1, 28, 28), torch.zeros(8)))
    >>> sorted(out.extras)
    ['contrast_acc', 'pos_sim']
    """

    def __init__(
        self,
        temperature: float = 0.5,
        crop_scale: tuple[float, float] = (0.35, 1.0),
        flip: bool = True,
        jitter: float = 0.2,
        eval_seed: int = 0,
    ) -> None:
        if not temperature > 0:
            raise ConfigError(f"task.temperature: must be > 0 (got {temperature})")
        low, high = crop_scale
        if not 0 < low <= high <= 1:
            raise ConfigError(f"task.crop_scale: need 0 < low ≤ high ≤ 1 (got {list(crop_scale)})")
        if jitter < 0:
            raise ConfigError(f"task.jitter: must be ≥ 0 (got {jitter})")
        self.temperature, self.eval_seed = temperature, eval_seed
        self.spec = ViewSpec(scale=(low, high), flip=flip, jitter=jitter)

    def check_data(self, data: object) -> None:
        shape = tuple(getattr(data, "input_shape", ()))
        if len(shape) != 3:
            raise ConfigError(
                f"task simclr: needs image data (C, H, W); this data's samples are {shape}"
            )

    def _terms(
        self, model: nn.Module, x: torch.Tensor, gen: torch.Generator | None
    ) -> dict[str, torch.Tensor]:
        v1, v2 = two_views(x, self.spec, gen)
        # One forward over both views: batch-norm statistics see all 2N of them.
        z = model(torch.cat([v1, v2]))  # (2N, D)
        if z.dim() != 2:
            raise ConfigError(
                f"task simclr: the model must return projections (N, D), got {tuple(z.shape)}"
            )
        z1, z2 = z.chunk(2)
        sim, targets = _logits_and_targets(z1, z2, self.temperature)
        with torch.no_grad():
            pos = F.cosine_similarity(z1.float(), z2.float(), dim=1).mean()
            acc = (sim.argmax(1) == targets).float().mean()
        return {"loss": F.cross_entropy(sim, targets), "pos_sim": pos, "contrast_acc": acc}

    def train_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        terms = self._terms(model, batch[0], None)  # the global RNG: saved and restored
        extras = {k: v.detach() for k, v in terms.items() if k != "loss"}
        return StepOutput(terms["loss"], extras=extras)

    def eval_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        x, y = batch
        gen = torch.Generator(device=x.device).manual_seed(self.eval_seed)
        terms = self._terms(model, x, gen)
        return StepOutput(terms["loss"], self.features(model, x).float(), y)

    def features(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """The representation a probe reads: ``model.encode(x)`` (N, F), before the projection
        head (``model(x)`` for a model without ``encode``)."""
        encode = getattr(bare_model(model), "encode", None)  # under DDP/EMA: the inner module
        return encode(x) if callable(encode) else model(x)

    def metrics(self, num_classes: int | None) -> MetricCollection:
        from torchmetrics import MetricCollection

        from trainlab.tasks.task_metrics import NearestNeighbourAccuracy

        if not num_classes:  # no labels at all: the loss is the only figure
            return MetricCollection({})
        return MetricCollection({"knn_acc": NearestNeighbourAccuracy()})


@register_task("simclr")
def simclr(
    *,
    temperature: float = 0.5,  # τ of NT-Xent: lower sharpens the softmax over the negatives
    crop_scale: tuple[float, float] = (0.35, 1.0),  # crop's share of the image area [low, high]
    flip: bool = True,  # mirror each view with probability 0.5
    jitter: float = 0.2,  # contrast × U(1 ± j), brightness + U(±j), normalised units
    eval_seed: int = 0,  # seeds the evaluation views (the same every evaluation)
) -> SimCLRTask:
    """Self-supervised contrastive learning (model ``simclr``): NT-Xent with ``temperature``
    over two views per image (crop of ``crop_scale`` of the area, resized; ``flip``;
    brightness/contrast ``jitter``); labels only feed ``val/knn_acc``."""
    return SimCLRTask(temperature, tuple(crop_scale), flip, jitter, eval_seed)  # type: ignore[arg-type]

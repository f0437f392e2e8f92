"""Capsule networks (Sabour, Frosst & Hinton, 2017): margin loss plus reconstruction regulariser.

The model (``capsnet``) gives class capsules (N, K, 16) through ``model.capsules(x)``; a capsule's
length in [0, 1) is the probability that its class is present. Per sample the objective is::

    margin = Σ_k T_k · max(0, m⁺ − ‖v_k‖)² + λ · (1 − T_k) · max(0, ‖v_k‖ − m⁻)²
    loss   = margin + recon_weight · Σ_pixels (decoder(v masked to the true class) − x)²

with the paper's m⁺ = 0.9, m⁻ = 0.1, λ = 0.5 and recon_weight = 0.0005 (the paper's "0.0005 ·
784 × per-pixel MSE", i.e. sum-squared error over 28×28 pixels in [0, 1] scaled by 0.0005, so
that it does not dominate the margin loss). The decoder reads only the true class's capsule (all
others masked to 0), which forces that capsule to encode the instance's pose. Its target is the
input mapped onto [0, 1] (``rescale``; the decoder ends in a sigmoid and the data modules hand
out standardised pixels, see :func:`trainlab.tasks.common.to_unit_range`).

Logged: ``train/margin`` and ``train/recon`` (the sum-squared error per image, unscaled), so that
``loss = margin + recon_weight · recon``; the same as ``val/margin``, ``val/recon``. Metrics are
the classification task's (accuracy, F1, confusion, and at test time ROC/PR curves), fed the
capsule lengths as class scores.

With ``recon_weight: 0`` the step is ``model(x)`` alone (capsule lengths); with the regulariser
the task calls ``model.capsules`` and ``model.reconstruct`` on the bare model, so gradients
would not be averaged under DistributedDataParallel (single-process training only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.models.capsule import margin_loss
from trainlab.tasks.base import StepOutput, register_task
from trainlab.tasks.classification import ClassificationTask
from trainlab.tasks.common import bare_model, to_unit_range

if TYPE_CHECKING:
    from torchmetrics import MetricCollection

__all__ = ["CapsuleTask", "capsule_classification"]

Batch = tuple[torch.Tensor, torch.Tensor]


class CapsuleTask:
    """Margin loss over capsule lengths (N, K), optionally plus the decoder's reconstruction.

    >>> from trainlab.models import create_model
    >>> model = create_model("capsnet", conv_channels=8, primary_maps=2)
    >>> out = CapsuleTask().train_step(model, (torch.randn(3, 1, 28, 28), torch.tensor([0, 1, 2])))
    >>> sorted(out.extras), tuple(out.preds.shape)
    (['margin', 'recon'], (3, 10))
    """

    def __init__(
        self,
        m_pos: float = 0.9,
        m_neg: float = 0.1,
        lam: float = 0.5,
        recon_weight: float = 0.0005,
        rescale: bool = True,
    ) -> None:
        if not 0 <= m_neg < m_pos <= 1:
            raise ConfigError(
                f"task.m_neg, task.m_pos: need 0 ≤ m_neg < m_pos ≤ 1 ({m_neg}, {m_pos})"
            )
        if lam < 0 or recon_weight < 0:
            raise ConfigError(f"task.lam, task.recon_weight: must be ≥ 0 ({lam}, {recon_weight})")
        self.m_pos, self.m_neg, self.lam = m_pos, m_neg, lam
        self.recon_weight, self.rescale = recon_weight, rescale
        # Metrics only: accuracy, F1, confusion, curves, exactly as for any classifier.
        self._metrics = ClassificationTask()

    def _terms(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, StepOutput]:
        """(capsule lengths (N, K), StepOutput with loss and both terms as extras)."""
        x, y = batch
        if self.recon_weight == 0:
            lengths = model(x).float()  # through the (possibly DDP-wrapped) forward
            margin = margin_loss(lengths, y, self.m_pos, self.m_neg, self.lam)
            extras = {"margin": margin.detach(), "recon": torch.zeros((), device=x.device)}
            return lengths, StepOutput(margin, extras=extras)
        net = bare_model(model)
        if not (callable(getattr(net, "capsules", None)) and hasattr(net, "reconstruct")):
            raise ConfigError(
                f"task capsule_classification: model {type(net).__name__} has no capsules() / "
                "reconstruct(); use capsnet, or set task.recon_weight: 0"
            )
        caps = net.capsules(x)  # (N, K, 16)
        lengths = caps.float().norm(dim=-1)  # (N, K)
        margin = margin_loss(lengths, y, self.m_pos, self.m_neg, self.lam)
        target = to_unit_range(x) if self.rescale else x.float()
        recon = net.reconstruct(caps, y).float()  # decoder on the true class's capsule only
        sse = (recon - target).pow(2).flatten(1).sum(1).mean()  # per image, pixels in [0, 1]
        extras = {"margin": margin.detach(), "recon": sse.detach()}
        return lengths, StepOutput(margin + self.recon_weight * sse, extras=extras)

    def train_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        lengths, out = self._terms(model, batch)
        return StepOutput(out.loss, lengths.detach(), batch[1], out.extras)

    def eval_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        lengths, out = self._terms(model, batch)
        return StepOutput(out.loss, lengths, batch[1], out.extras)

    def metrics(self, num_classes: int | None) -> MetricCollection:
        return self._metrics.metrics(num_classes)

    def test_metrics(self, num_classes: int | None) -> MetricCollection:
        return self._metrics.test_metrics(num_classes)


@register_task("capsule_classification")
def capsule_classification(
    *,
    m_pos: float = 0.9,
    m_neg: float = 0.1,
    lam: float = 0.5,
    recon_weight: float = 0.0005,
    rescale: bool = True,
) -> CapsuleTask:
    """CapsNet objective: margin loss on capsule lengths (``m_pos``, ``m_neg``, ``lam``) plus
    ``recon_weight`` × the decoder's sum-squared reconstruction error (0 turns it off)."""
    return CapsuleTask(m_pos, m_neg, lam, recon_weight, rescale)

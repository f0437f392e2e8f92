"""Restricted Boltzmann machines by contrastive divergence, and deep belief networks.

``contrastive_divergence`` trains an ``rbm``. Per batch of visible vectors v (N, V) in [0, 1]
(images mapped onto [0, 1] with ``rescale``, then flattened), a k-step Gibbs chain started at
the data gives v_k, and the loss is the free-energy gap (Hinton, 2002)::

    loss = mean F(v) − mean F(v_k),    F(v) = −vᵀb_v − Σ_j softplus((Wv + b_h)_j)

v_k is sampled without gradient, so ∇loss is the CD-k estimate of −∇ log p(v): for the weights
−(⟨p(h|v) vᵀ⟩_data − ⟨p(h|v_k) v_kᵀ⟩_model). The recipe's optimizer steps on it like on any loss.
Logged per step: ``train/loss`` (the data-vs-chain gap: large while the chain wanders away from
the data), ``train/recon`` (per-pixel squared error of the mean-field reconstruction
p(v | p(h | v)), the usual progress figure) and ``train/free_energy`` (mean F of the data).
Evaluation reports ``val/loss`` (the same gap, chains drawn from a private, seeded RNG:
deterministic, and the training RNG is untouched), ``val/recon``, ``val/free_energy`` and
``val/fe_gap``: mean F(validation) − mean F(reference), the reference being the first
``reference_size`` training vectors, kept by the task (and in its checkpointed state). This is
the overfitting monitor of Hinton's practical guide (2010, §6): both averages use the current
weights (the partition function cancels), and a gap that keeps growing means the model gives
the training data ever more probability than unseen data.

``dbn`` trains a deep belief network in one run (Hinton, Osindero & Teh, 2006): greedy
layer-wise pre-training, RBM 0 on the pixels for ``pretrain_batches[0]`` training batches, then
RBM 1 on RBM 0's mean-field features for ``pretrain_batches[1]`` batches, and so on; after that,
every remaining batch fine-tunes the whole stack plus its linear head as a sigmoid MLP with
cross-entropy. The schedule counts ``train_step`` calls (the task's ``batches_seen``, saved in
checkpoints, so a resumed run continues in the right phase); with B batches per epoch, choose
multiples of B so that every epoch's validation figures belong to one phase. While RBM i
trains only its parameters get gradients (the trainer's optimizer skips parameters without
one). Logged: ``train/phase`` (i while RBM i pre-trains, L = number of RBMs while
fine-tuning), ``train/recon`` (RBM 0's per-pixel reconstruction error), ``train/acc`` (fine-
tuning batches only); evaluation gives the classification task's metrics (``val/acc`` …; near
chance until fine-tuning starts, since the head is still random) and ``val/recon``.

Not supported: DistributedDataParallel (the CD steps call the bare model's methods, outside
DDP's forward) and low precision (recipes use fp32: free energies are sums over ~10³ terms).
"""

from __future__ import annotations

from itertools import accumulate
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.errors import ConfigError
from trainlab.tasks.base import StepOutput, register_task
from trainlab.tasks.classification import ClassificationTask
from trainlab.tasks.common import bare_model, to_unit_range

if TYPE_CHECKING:
    from torchmetrics import MetricCollection

__all__ = ["CDTask", "DBNTask", "contrastive_divergence", "dbn", "cd_terms"]

Batch = tuple[torch.Tensor, torch.Tensor]


def cd_terms(
    rbm: nn.Module, v: torch.Tensor, k: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(free-energy gap F(v) − F(v_k) (N,), F(v) (N,)) for data v (N, V) and a k-step chain."""
    v_model = rbm.gibbs(v.detach(), k, generator)  # (N, V), sampled: no gradient through it
    f_data = rbm.free_energy(v).float()
    return f_data - rbm.free_energy(v_model).float(), f_data


@torch.no_grad()
def recon_error(rbm: nn.Module, v: torch.Tensor) -> torch.Tensor:
    """Per-sample mean squared error (N,) of the mean-field reconstruction p(v | p(h | v))."""
    return (rbm.visible_prob(rbm.hidden_prob(v)).float() - v.float()).pow(2).mean(1)


def _visible(x: torch.Tensor, rescale: bool) -> torch.Tensor:
    # Bernoulli visible units need values in [0, 1]; data modules hand out standardised pixels.
    return (to_unit_range(x) if rescale else x.float()).flatten(1)  # (N, V)


def _check_k(k: int) -> None:
    if k < 1:
        raise ConfigError(f"task.k: Gibbs steps per update must be ≥ 1 (got {k})")


class CDTask:
    """CD-k training of an RBM; reconstruction error and free energy logged as extras.

    >>> from trainlab.models import create_model
    >>> out = CDTask(k=1).train_step(create_model("rbm", n_visible=16, n_hidden=4),
    ...                              (torch.rand(5, 1, 4, 4), torch.zeros(5)))
    >>> sorted(out.extras)
    ['free_energy', 'recon']
    """

    def __init__(
        self, k: int = 1, rescale: bool = True, eval_seed: int = 0, reference_size: int = 500
    ) -> None:
        _check_k(k)
        if reference_size < 0:
            raise ConfigError(f"task.reference_size: must be ≥ 0 (got {reference_size})")
        self.k, self.rescale, self.eval_seed = k, rescale, eval_seed
        self.reference_size = reference_size
        # The first reference_size training vectors (R, V): val/fe_gap compares against them.
        self.reference: torch.Tensor | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"reference": self.reference}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.reference = state.get("reference")

    def _keep_reference(self, v: torch.Tensor) -> None:
        have = 0 if self.reference is None else len(self.reference)
        if have >= self.reference_size:
            return
        new = v[: self.reference_size - have].detach().clone()  # sizes known on the host
        self.reference = new if self.reference is None else torch.cat([self.reference, new])

    def _rbm(self, model: nn.Module) -> nn.Module:
        net = bare_model(model)
        if not (callable(getattr(net, "gibbs", None)) and hasattr(net, "free_energy")):
            raise ConfigError(
                f"task contrastive_divergence: model {type(net).__name__} is not an RBM; use "
                "rbm (for dbn use task dbn)"
            )
        return net

    def train_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        rbm, v = self._rbm(model), _visible(batch[0], self.rescale)
        self._keep_reference(v)
        gap, f_data = cd_terms(rbm, v, self.k)
        extras = {"recon": recon_error(rbm, v).mean(), "free_energy": f_data.mean().detach()}
        return StepOutput(gap.mean(), extras=extras)

    def eval_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        rbm, v = self._rbm(model), _visible(batch[0], self.rescale)
        # The same chain noise for every batch and epoch: comparable epochs, training RNG intact.
        gen = torch.Generator(device=v.device).manual_seed(self.eval_seed)
        gap, f_data = cd_terms(rbm, v, self.k, gen)
        per_sample = torch.stack([recon_error(rbm, v), f_data], dim=1)  # (N, 2)
        extras = None
        if self.reference is not None and self.reference.shape[1] == v.shape[1]:
            f_ref = rbm.free_energy(self.reference.to(v.device)).float().mean()
            extras = {"fe_gap": f_data.mean() - f_ref}  # averaged over the split by the trainer
        return StepOutput(gap.mean(), per_sample, extras=extras)

    def metrics(self, num_classes: int | None) -> MetricCollection:
        from torchmetrics import MetricCollection

        from trainlab.tasks.task_metrics import ColumnMean

        # compute_groups off: the two differ only in the column they read (see VAETask).
        return MetricCollection(
            {"recon": ColumnMean(0), "free_energy": ColumnMean(1)}, compute_groups=False
        )


class DBNTask:
    """Greedy CD pre-training of a DBN's RBMs, then supervised fine-tuning, in one run.

    >>> from trainlab.models import create_model
    >>> model = create_model("dbn", sizes=[16, 8, 4], num_classes=3)
    >>> task = DBNTask(pretrain_batches=[1, 1])
    >>> x, y = torch.rand(6, 16), torch.tensor([0, 1, 2, 0, 1, 2])
    >>> [int(task.train_step(model, (x, y)).extras["phase"]) for _ in range(3)]
    [0, 1, 2]
    """

    def __init__(self, pretrain_batches: list[int], k: int = 1, rescale: bool = True) -> None:
        _check_k(k)
        if any(n < 0 for n in pretrain_batches):
            raise ConfigError(f"task.pretrain_batches: counts must be ≥ 0 ({pretrain_batches})")
        self.ends = list(accumulate(pretrain_batches))  # batch count at which phase i ends
        self.k, self.rescale = k, rescale
        self.batches_seen = 0  # the phase clock: train_step calls so far
        self._metrics = ClassificationTask()

    def _dbn(self, model: nn.Module) -> nn.Module:
        net = bare_model(model)
        rbms = getattr(net, "rbms", None)
        if rbms is None or not callable(getattr(net, "pretrain_loss", None)):
            raise ConfigError(f"task dbn: model {type(net).__name__} is not a DBN; use dbn")
        if len(rbms) != len(self.ends):
            raise ConfigError(
                f"task.pretrain_batches: one count per RBM needed, the model has {len(rbms)} "
                f"RBMs and the list {len(self.ends)} entries"
            )
        return net

    def phase(self) -> int:
        """Index of the RBM pre-training now (= number of RBMs once fine-tuning)."""
        return sum(self.batches_seen >= end for end in self.ends)

    def setup(self, model: nn.Module, device: torch.device) -> None:
        self._dbn(model)  # a schedule that does not fit the model fails before training

    def state_dict(self) -> dict[str, Any]:
        return {"batches_seen": self.batches_seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.batches_seen = int(state["batches_seen"])

    def train_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        net, v = self._dbn(model), _visible(batch[0], self.rescale)
        phase = self.phase()
        self.batches_seen += 1
        extras = {
            "phase": torch.full((), float(phase), device=v.device),
            "recon": recon_error(net.rbms[0], v).mean(),
        }
        if phase < len(net.rbms):  # RBM `phase` on the frozen features of the ones below
            return StepOutput(net.pretrain_loss(v, phase, self.k), extras=extras)
        logits = model(v)  # (N, K): the stack as a sigmoid MLP plus its linear head
        return StepOutput(F.cross_entropy(logits, batch[1]), logits.detach(), batch[1], extras)

    def eval_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        net, v = self._dbn(model), _visible(batch[0], self.rescale)
        logits = model(v).float()
        extras = {"recon": recon_error(net.rbms[0], v).mean()}
        return StepOutput(F.cross_entropy(logits, batch[1]), logits, batch[1], extras)

    def metrics(self, num_classes: int | None) -> MetricCollection:
        return self._metrics.metrics(num_classes)

    def test_metrics(self, num_classes: int | None) -> MetricCollection:
        return self._metrics.test_metrics(num_classes)


@register_task("contrastive_divergence")
def contrastive_divergence(
    *, k: int = 1, rescale: bool = True, eval_seed: int = 0, reference_size: int = 500
) -> CDTask:
    """Train an ``rbm`` by CD-``k``; ``rescale`` maps each batch onto [0, 1] (Bernoulli units);
    evaluation chains come from a private RNG seeded with ``eval_seed``; ``val/fe_gap`` compares
    validation free energies with those of the first ``reference_size`` training vectors."""
    return CDTask(k, rescale, eval_seed, reference_size)


@register_task("dbn")
def dbn(*, pretrain_batches: list[int], k: int = 1, rescale: bool = True) -> DBNTask:
    """Deep belief network: CD-``k`` pre-training of RBM i for ``pretrain_batches[i]`` training
    batches, one RBM after the other, then supervised fine-tuning of the whole stack."""
    return DBNTask(list(pretrain_batches), k, rescale)

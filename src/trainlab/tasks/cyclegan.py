"""CycleGAN training as a task (Zhu et al., 2017): unpaired translation between domains A and B.

The model (``cyclegan``) holds G (A → B), F (B → A), D_A and D_B; the data gives each sample as
one A image and one B image stacked along the channels, (N, 2C, H, W) in [-1, 1]
(``unpaired_fashion_mnist``). One training step, inside the one Trainer:

1. ``fake_b = G(a)``, ``fake_a = F(b)``;
2. **discriminator step**, with the task's own Adam (``d_lr``, ``d_betas``) over D_A and D_B:
   least squares (Mao et al., 2017), ``½·[(D(real) − 1)² + D(pool(fake))²]`` per
   discriminator, averaged over the patch logits; ``pool`` is a 50-image history
   (:class:`~trainlab.tasks.image_pool.ImagePool`);
3. **generator loss**, returned to the trainer, which steps the recipe's optimizer over G and F
   (``task.optim_module``), with the discriminators frozen:
   ``(D_B(G(a)) − 1)² + (D_A(F(b)) − 1)²`` (adversarial)
   ``+ λ_cyc·(|F(G(a)) − a|₁ + |G(F(b)) − b|₁)`` (cycle consistency)
   ``+ λ_cyc·λ_id·(|G(b) − b|₁ + |F(a) − a|₁)`` (identity: keeps colours and whatever needs no
   change). The paper's weights: λ_cyc = 10, λ_id = 0.5.

The discriminator steps before the generator's loss is formed (the reference code steps it
after); either way each player moves once per batch against the other's latest weights.

Evaluation reads pairs (a, T(a)) — the data's true translation, which training never sees —
and reports, per pixel on a 0–1 scale: ``val/mae_ab`` = |G(a) − T(a)|, ``val/mae_ba`` =
|F(T(a)) − a|, ``val/identity_mae`` = |a − T(a)| (what doing nothing scores: the baseline) and
``val/cycle_mae`` = |F(G(a)) − a|. With ``judge`` (the run directory of a trainlab classifier,
trained on domain ``judge_domain`` images), ``val/agree`` is the share of translations into that
domain whose class the judge reads as the source image's class, beside ``val/agree_identity``
(the untranslated source images) and ``val/agree_truth`` (the true translations: the ceiling).
``val/loss`` is the generators' objective on the held-out batch.

Logged per training step: ``train/loss`` (generators), ``train/g_adv``, ``train/cycle``,
``train/identity``, ``train/d_loss``. The discriminators' optimizer and both pools are in
``state_dict()``, for exact resume. Not supported: fp16 (the discriminator step has no gradient
scaler: a ConfigError; bf16 and fp32 are fine) and DistributedDataParallel.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.tasks.base import StepOutput, register_task
from trainlab.tasks.common import bare_model
from trainlab.tasks.gan import frozen
from trainlab.tasks.image_pool import ImagePool
from trainlab.tasks.side_optimizer import DiscriminatorTask, SideOptimizer, refuse_fp16

if TYPE_CHECKING:
    from torchmetrics import MetricCollection

__all__ = ["CycleGANTask", "Nets", "cyclegan", "discriminator_loss", "generator_losses",
           "lsgan_loss"]  # fmt: skip

Batch = tuple[torch.Tensor, torch.Tensor]
Nets = tuple[nn.Module, nn.Module, nn.Module, nn.Module]  # G (A→B), F (B→A), D_A, D_B
COLUMNS = ("mae_ab", "mae_ba", "identity_mae", "cycle_mae")
JUDGE_COLUMNS = ("agree", "agree_identity", "agree_truth")


def lsgan_loss(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """Least-squares GAN loss: mean of (logits − 1)² for ``real``, else of logits².

    >>> lsgan_loss(torch.tensor([0.5, 1.5]), real=True)
    tensor(0.2500)
    """
    target = 1.0 if real else 0.0
    return (logits.float() - target).square().mean()


def discriminator_loss(d: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """½·[LS(D(real), 1) + LS(D(fake), 0)]: halved, so D learns at half G's rate (the paper)."""
    return 0.5 * (lsgan_loss(d(real), True) + lsgan_loss(d(fake), False))


def _l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x.float() - y.float()).abs().mean()


def generator_losses(
    nets: Nets, a: torch.Tensor, b: torch.Tensor, fake_a: torch.Tensor, fake_b: torch.Tensor,
    lambda_identity: float,
) -> dict[str, torch.Tensor]:  # fmt: skip
    """The generators' loss terms (unweighted): ``adv`` (LS, both directions), ``cycle``
    (L1 of both round trips), ``identity`` (L1 of G(b) − b and F(a) − a; 0 when
    ``lambda_identity`` is 0, and not computed)."""
    g, f, d_a, d_b = nets
    out = {
        "adv": lsgan_loss(d_b(fake_b), True) + lsgan_loss(d_a(fake_a), True),
        "cycle": _l1(f(fake_b), a) + _l1(g(fake_a), b),
    }
    zero = torch.zeros((), device=a.device)
    out["identity"] = _l1(g(b), b) + _l1(f(a), a) if lambda_identity > 0 else zero
    return out


def _nets(model: nn.Module) -> Nets:
    net = bare_model(model)
    gens, discs = getattr(net, "generators", None), getattr(net, "discriminators", None)
    if not isinstance(gens, nn.ModuleDict) or not isinstance(discs, nn.ModuleDict):
        raise ConfigError(
            f"task cyclegan: model {type(net).__name__} has no generators (ab, ba) and "
            "discriminators (a, b); use model.name=cyclegan"
        )
    return gens["ab"], gens["ba"], discs["a"], discs["b"]


def _halves(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    c = x.shape[1] // 2  # (N, 2C, H, W): A in channels :C, B in C:
    return x[:, :c], x[:, c:]


def _pixel_error(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample mean absolute error (N,), on the 0–1 pixel scale ([-1, 1] halved)."""
    return (x.float() - y.float()).abs().flatten(1).mean(1) / 2


class CycleGANTask(DiscriminatorTask):
    """CycleGAN objective; the discriminators train inside ``train_step``.

    >>> from trainlab.models import create_model
    >>> model = create_model("cyclegan", width=4, blocks=1, d_width=4)
    >>> task = CycleGANTask()
    >>> out = task.train_step(model, (torch.rand(3, 2, 28, 28) * 2 - 1, torch.zeros(3)))
    >>> sorted(out.extras)
    ['cycle', 'd_loss', 'g_adv', 'identity']
    """

    def __init__(
        self, lambda_cycle: float = 10.0, lambda_identity: float = 0.5, pool_size: int = 50,
        d_lr: float = 2e-4, d_betas: tuple[float, float] = (0.5, 0.999),
        judge: str | None = None, judge_domain: str = "b", preview: int = 8,
    ) -> None:  # fmt: skip
        _check_options(lambda_cycle, lambda_identity, pool_size, d_lr, judge, judge_domain)
        self.lambda_cycle, self.lambda_identity = lambda_cycle, lambda_identity
        self.pools = {"a": ImagePool(pool_size), "b": ImagePool(pool_size)}
        self.d_side = SideOptimizer(d_lr, tuple(d_betas))  # Adam over D_A and D_B
        self.judge, self.judge_domain, self.preview_n = judge, judge_domain, preview
        self._judge_net: nn.Module | None = None
        self.domain_channels: int | None = None
        self.preview: torch.Tensor | None = None  # first held-out pairs seen, for grids

    # -- hooks the trainer and experiment call ------------------------------------------------
    def check_data(self, data: Any) -> None:
        c = getattr(data, "domain_channels", None)
        if not isinstance(c, int):
            raise ConfigError(
                f"task cyclegan needs two-domain image data (one A and one B image per sample); "
                f"{type(data).__name__} gives one domain: use data.name=unpaired_fashion_mnist "
                "with data.view=unpaired"
            )
        self.domain_channels = c

    def optim_module(self, model: nn.Module) -> nn.Module:
        """The recipe's optimizer trains G and F; the discriminators are this task's."""
        _nets(model)
        want, c = getattr(bare_model(model), "channels", None), self.domain_channels
        if c is not None and want is not None and want != c:
            raise ConfigError(f"model.channels={want} but each domain's images have {c} "
                              f"channel(s): set model.channels={c}")  # fmt: skip
        return bare_model(model).generators

    def setup(self, model: nn.Module, device: torch.device) -> None:
        """Build the discriminators' Adam (kept, with its state, on a second call)."""
        self.d_side.build(bare_model(model).discriminators)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), **{f"pool_{k}": p.state_dict()
                                           for k, p in self.pools.items()}}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        for k, pool in self.pools.items():
            pool.load_state_dict(state.get(f"pool_{k}") or {})

    # -- steps ----------------------------------------------------------------------------------
    def _d_step(self, nets: Nets, a: torch.Tensor, b: torch.Tensor, fake_a: torch.Tensor,
                fake_b: torch.Tensor) -> torch.Tensor:  # fmt: skip
        _, _, d_a, d_b = nets
        d_loss = (discriminator_loss(d_a, a, self.pools["a"].query(fake_a))
                  + discriminator_loss(d_b, b, self.pools["b"].query(fake_b)))  # fmt: skip
        self.d_side.step(d_loss)
        return d_loss.detach()

    def _objective(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        lc = self.lambda_cycle
        return terms["adv"] + lc * terms["cycle"] + lc * self.lambda_identity * terms["identity"]

    def train_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        nets = _nets(model)
        g, f, d_a, d_b = nets
        a, b = _halves(batch[0])  # (N, C, H, W) each, unpaired
        if self.d_optimizer is None:  # a hand-written loop need not call setup() first
            self.setup(model, a.device)
        refuse_fp16("cyclegan", a.device.type)
        fake_b, fake_a = g(a), f(b)
        d_loss = self._d_step(nets, a, b, fake_a, fake_b)
        with frozen(d_a), frozen(d_b):  # gradients reach G, F through D; D's own stay untouched
            terms = generator_losses(nets, a, b, fake_a, fake_b, self.lambda_identity)
        extras = {"g_adv": terms["adv"].detach(), "cycle": terms["cycle"].detach(),
                  "identity": terms["identity"].detach(), "d_loss": d_loss}  # fmt: skip
        return StepOutput(self._objective(terms), extras=extras)

    def eval_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        nets = _nets(model)
        g, f, _, _ = nets
        a, true_b = _halves(batch[0])  # held-out pairs: a and its true translation T(a)
        if self.preview is None:
            self.preview = batch[0][: self.preview_n].detach().float().cpu()
        fake_b, fake_a = g(a), f(true_b)
        terms = generator_losses(nets, a, true_b, fake_a, fake_b, self.lambda_identity)
        cols = [_pixel_error(fake_b, true_b), _pixel_error(fake_a, a),
                _pixel_error(a, true_b), _pixel_error(f(fake_b), a)]  # fmt: skip
        if self.judge is not None:
            cols += self._agreement(a, true_b, fake_a, fake_b, batch[1])
        return StepOutput(self._objective(terms), torch.stack(cols, dim=1), batch[1])

    def _agreement(self, a: torch.Tensor, true_b: torch.Tensor, fake_a: torch.Tensor,
                   fake_b: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:  # fmt: skip
        """Per sample, 1.0 where the judge reads the source's class: on the translations into
        its domain, on the untranslated sources, on the true translations."""
        judge = self._load_judge(a.device)
        if self.judge_domain == "b":
            images = (fake_b, a, true_b)
        else:
            images = (fake_a, true_b, a)

        def agree(img: torch.Tensor) -> torch.Tensor:
            pixels = (img.float().clamp(-1, 1) + 1) * 127.5  # the judge's stored units, 0..255
            return (judge(pixels).argmax(-1) == y).float()

        return [agree(img) for img in images]

    def _load_judge(self, device: torch.device) -> nn.Module:
        if self._judge_net is None:
            from trainlab.loading import load_model

            assert self.judge is not None
            self._judge_net = load_model(self.judge, normalize=True, device=device)
            self._judge_net.requires_grad_(False)
        return self._judge_net

    def metrics(self, num_classes: int | None) -> MetricCollection:
        from torchmetrics import MetricCollection

        from trainlab.tasks.task_metrics import ColumnMean

        names = COLUMNS + (JUDGE_COLUMNS if self.judge is not None else ())
        return MetricCollection({n: ColumnMean(i) for i, n in enumerate(names)})

    @torch.no_grad()
    def translation_grid(self, model: nn.Module) -> torch.Tensor | None:
        """Rows of the preview pairs, in [0, 1]: a, G(a), F(G(a)), T(a) (the truth),
        (4·n, C, H, W); None before any evaluation."""
        if self.preview is None:
            return None
        g, f, _, _ = _nets(model)
        device = next(bare_model(model).parameters()).device
        a, true_b = _halves(self.preview.to(device))
        fake_b = g(a).float()
        rows = torch.cat([a, fake_b, f(fake_b).float(), true_b])
        return ((rows + 1) / 2).clamp(0, 1).cpu()


def _check_options(lambda_cycle: float, lambda_identity: float, pool_size: int, d_lr: float,
                   judge: str | None, judge_domain: str) -> None:  # fmt: skip
    if lambda_cycle < 0 or lambda_identity < 0:
        raise ConfigError(f"task.lambda_cycle and task.lambda_identity must be ≥ 0 "
                          f"({lambda_cycle}, {lambda_identity})")  # fmt: skip
    if pool_size < 0 or d_lr <= 0:
        raise ConfigError(f"task.pool_size ≥ 0 and task.d_lr > 0 needed ({pool_size}, {d_lr})")
    if judge_domain not in ("a", "b"):
        raise ConfigError(f"task.judge_domain: '{judge_domain}'; valid: a, b")
    if judge is not None and not (Path(judge) / "config.yaml").is_file():
        raise ConfigError(
            f"task.judge: {judge} is not a trainlab run directory (no config.yaml); give the "
            "run directory of a trained classifier"
        )


@register_task("cyclegan")
def cyclegan(
    *,
    lambda_cycle: float = 10.0,  # weight of the cycle-consistency L1 terms
    lambda_identity: float = 0.5,  # identity L1 weight, × lambda_cycle (0: off)
    pool_size: int = 50,  # generated images each discriminator's history keeps
    d_lr: float = 2e-4,  # the discriminators' Adam learning rate
    d_betas: tuple[float, float] = (0.5, 0.999),  # the discriminators' Adam (β1, β2)
    judge: str | None = None,  # a classifier run directory: val/agree, agree_identity, …
    judge_domain: str = "b",  # the judge's domain: b scores G(a), a scores F(T(a))
    preview: int = 8,  # held-out pairs shown by the translation_grid callback
) -> CycleGANTask:
    """CycleGAN: LS adversarial + ``lambda_cycle``·cycle + ``lambda_cycle·lambda_identity``·
    identity for G and F (the recipe's optimizer); D_A and D_B with the task's Adam on
    ``pool_size``-image histories. ``judge``: a classifier run directory scoring translations
    into domain ``judge_domain`` (``val/agree``); ``preview``: pairs in the translation grids.
    """
    return CycleGANTask(lambda_cycle, lambda_identity, pool_size, d_lr, d_betas, judge,
                        judge_domain, preview)  # fmt: skip

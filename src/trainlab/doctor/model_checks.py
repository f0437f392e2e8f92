"""Pre-flight rules on the model: one forward and one backward pass on a real batch.

Output shape against the task, the initial loss against ln C, per-layer activation statistics
(vanishing or exploding signal, dead ReLUs), per-layer relative gradient norms (first against
last layer) and ``torch.autograd.gradcheck`` (float64, fast mode) on every module that is not a
stock torch layer or that runs a custom ``autograd.Function``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from trainlab.doctor.findings import Finding, gradient_ratio
from trainlab.errors import TrainlabError

__all__ = ["ForwardProbe", "probe", "check_model", "gradcheck_modules", "DoctorInputError"]

# Share of a ReLU layer's units that output 0 for every sample of the batch: a note from
# DEAD_NOTE (sparse inputs, e.g. a capsule decoder's masked input, give ~50 % at init), a
# warning from DEAD_SHARE.
DEAD_NOTE, DEAD_SHARE = 0.5, 0.8
MAX_GRADCHECKS = 24
# Last/first weighted layer activation std: a note outside (LOW, HIGH), a warning outside
# (LOW², HIGH²).
SIGNAL_LOW, SIGNAL_HIGH = 1e-2, 1e2


class DoctorInputError(TrainlabError):
    """The recipe builds but cannot run: e.g. the model's forward fails on the data's shape."""


@dataclass
class ForwardProbe:
    """What one forward/backward pass showed, layer by layer in execution order."""

    loss: float
    output_shape: tuple[int, ...]
    acts: list[tuple[str, str, float, float]] = field(default_factory=list)  # name, type, mean, std
    dead: dict[str, float] = field(default_factory=dict)  # ReLU layer → share of dead units
    rel_grads: list[tuple[str, float]] = field(default_factory=list)  # layer, |g|/|w|
    inputs: dict[str, torch.Tensor] = field(default_factory=dict)  # gradcheck candidates' input
    custom_fn: bool = False  # the graph holds a custom autograd.Function


def _stock(m: nn.Module) -> bool:
    return type(m).__module__.startswith("torch.")


def _leaf(m: nn.Module) -> bool:
    return next(m.children(), None) is None


def _hooks(model: nn.Module, p: ForwardProbe, order: list[str]) -> list[Any]:
    handles = []
    for name, m in model.named_modules():
        if not name:
            continue

        def after(mod: nn.Module, args: Any, out: Any, name: str = name) -> None:
            if not isinstance(out, torch.Tensor) or not out.is_floating_point() or name in order:
                return
            order.append(name)
            o = out.detach().float()
            if _leaf(mod):
                p.acts.append((name, type(mod).__name__, float(o.mean()), float(o.std())))
            if isinstance(mod, (nn.ReLU, nn.ReLU6)) and o.dim() >= 2:
                units = (o != 0).reshape(o.shape[0], o.shape[1], -1).any(dim=(0, 2))
                p.dead[name] = 1.0 - float(units.float().mean())
            if isinstance(out.grad_fn, torch.autograd.function.BackwardCFunction):
                p.custom_fn = True  # a custom autograd.Function produced this output

        def before(mod: nn.Module, args: Any, name: str = name) -> None:
            if name not in p.inputs and args and isinstance(args[0], torch.Tensor):
                p.inputs[name] = args[0][:2].detach().clone()

        handles.append(m.register_forward_hook(after))
        if not _stock(m):
            handles.append(m.register_forward_pre_hook(before))
    return handles


def probe(model: nn.Module, task: Any, batch: tuple[torch.Tensor, torch.Tensor]) -> ForwardProbe:
    """One training forward and backward of ``task`` on ``batch`` with hooks on every layer.

    Raises :class:`DoctorInputError` when the forward fails (e.g. a shape mismatch).
    """
    order: list[str] = []
    captured: dict[str, Any] = {}
    p = ForwardProbe(math.nan, ())
    handles = _hooks(model, p, order)
    handles.append(model.register_forward_hook(lambda m, a, out: captured.setdefault("out", out)))
    model.train()
    model.zero_grad(set_to_none=True)
    try:
        step = task.train_step(model, batch)
    except (RuntimeError, ValueError, IndexError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        shape = "x".join(str(s) for s in batch[0].shape)
        raise DoctorInputError(
            f"the model's forward fails on a batch of shape {shape}: {first}"
        ) from None
    finally:
        for h in handles:
            h.remove()
    out = captured.get("out")
    p.output_shape = tuple(out.shape) if isinstance(out, torch.Tensor) else ()
    p.loss = float(step.loss.detach())
    if step.loss.requires_grad:
        step.loss.backward()
    p.rel_grads = _rel_grads(model, order)
    model.zero_grad(set_to_none=True)
    return p


def _rel_grads(model: nn.Module, order: list[str]) -> list[tuple[str, float]]:
    """|grad| / |weight| of each layer's weight, in execution order (embeddings left out:
    only the rows of the batch's tokens get a gradient)."""
    modules = dict(model.named_modules())
    out = []
    for name in order:
        m = modules[name]
        w = getattr(m, "weight", None)
        if isinstance(m, nn.Embedding) or not isinstance(w, torch.Tensor) or w.dim() < 2:
            continue
        if w.grad is None or not w.requires_grad:
            continue
        wn = float(w.detach().float().norm())
        if wn > 0:
            out.append((name, float(w.grad.detach().float().norm()) / wn))
    return out


def check_model(
    p: ForwardProbe, num_classes: int | None, classify: bool, depth_rules: bool = True
) -> list[Finding]:
    """The rules reading one :class:`ForwardProbe`. ``depth_rules``: compare the first and
    last layers' gradients (meaningful for feed-forward classifiers and regressors; an
    attention projection's tiny gradient at initialisation is not a vanishing gradient)."""
    found: list[Finding] = []
    if classify and num_classes:
        found += _output_and_loss(p, num_classes)
    if depth_rules:
        found += _gradients(p)
        found += _signal(p)
    found += _dead(p)
    return found


_WEIGHTED = ("Linear", "Conv1d", "Conv2d", "Conv3d", "LazyLinear")


def _signal(p: ForwardProbe) -> list[Finding]:
    """Activation std of the last weighted layer against the first (one forward pass): a
    signal that shrinks or grows by decades through the depth."""
    stds = [(n, s) for n, t, _, s in p.acts if t in _WEIGHTED and math.isfinite(s)]
    if len(stds) < 3 or stds[0][1] <= 0:
        return []
    (first, s0), (last, s1) = stds[0], stds[-1]
    ratio = s1 / s0
    if SIGNAL_LOW < ratio < SIGNAL_HIGH:
        return []
    extreme = ratio < SIGNAL_LOW**2 or ratio > SIGNAL_HIGH**2
    what = "shrinks" if ratio < 1 else "grows"
    return [Finding(
        "model.signal", "vanishing_signal" if ratio < 1 else "exploding_signal",
        "warning" if extreme else "info", 0.6,
        f"the activation std {what} from {s0:.3g} ('{first}') to {s1:.3g} ('{last}') through "
        f"{len(stds)} layers", {"layers": {n: s for n, s in stds}, "ratio": ratio},
        "an initialisation scale that does not preserve the variance for this depth and "
        "activation (Xavier for tanh/sigmoid, Kaiming for ReLU)",
        ["model.init=kaiming_normal"],
        note="or normalisation layers (model.norm=batch)",
    )]  # fmt: skip


def _output_and_loss(p: ForwardProbe, k: int) -> list[Finding]:
    if len(p.output_shape) != 2 or p.output_shape[-1] != k:
        return [Finding(
            "model.output_shape", "bad_output_shape", "error", 1.0,
            f"the model outputs shape {list(p.output_shape)}; classification needs (N, {k})",
            {"output_shape": list(p.output_shape), "num_classes": k},
            "the last layer does not produce one logit per class",
            [f"model.num_classes={k}"],
        )]  # fmt: skip
    expected = math.log(k)
    if not math.isfinite(p.loss):
        return [
            Finding(
                "model.initial_loss",
                "non_finite_init",
                "error",
                0.95,
                "the loss of the untrained model is not finite",
                {"loss": None},
                "NaN or Inf already in the first forward pass (inputs, init or a layer)",
            )
        ]
    if p.loss > 3 * expected and p.loss > expected + 2:
        return [Finding(
            "model.initial_loss", "overconfident_init", "warning", 0.6,
            f"initial loss {p.loss:.3g} is far above ln C = {expected:.3g}",
            {"loss": p.loss, "expected": expected},
            "the untrained model is confidently wrong: its logits are large (unscaled inputs, "
            "a too large initialisation scale, or a missing normalisation)",
        )]  # fmt: skip
    return []


def _gradients(p: ForwardProbe) -> list[Finding]:
    g = [(n, v) for n, v in p.rel_grads if v > 0 or math.isnan(v)]
    if len(g) < 2:
        return []
    (first, gf), (last, gl) = g[0], g[-1]
    if not (math.isfinite(gf) and math.isfinite(gl)):
        return [
            Finding(
                "model.gradients",
                "exploding_gradients",
                "error",
                0.9,
                "non-finite gradients after one backward pass",
                {"first": gf, "last": gl},
                "NaN/Inf gradients: overflow in a layer or the loss",
            )
        ]
    ratio = gf / gl
    evidence = {"first_layer": first, "last_layer": last, "first_rel_grad": gf,
                "last_rel_grad": gl, "ratio": ratio, "layers": dict(g)}  # fmt: skip
    return gradient_ratio(
        "model", ratio, f"relative gradient of '{first}' is {ratio:.1e} × that of '{last}'",
        evidence, "an initialisation too large for the depth makes gradients explode",
    )


def _dead(p: ForwardProbe) -> list[Finding]:
    dead = {k: v for k, v in p.dead.items() if v >= DEAD_NOTE}
    if not dead:
        return []
    worst = max(dead, key=dead.__getitem__)
    severe = dead[worst] >= DEAD_SHARE
    return [Finding(
        "model.dead_relu", "dead_relu", "warning" if severe else "info", 0.55 + 0.3 * dead[worst],
        f"{len(dead)} ReLU layer(s) with most units dead: '{worst}' {dead[worst]:.0%}",
        {"dead_share": p.dead}, "units that output 0 for every input get no gradient and "
        "never recover (large negative biases, a too high LR or unnormalised inputs)",
        ["model.act=leaky_relu"],
    )]  # fmt: skip


def gradcheck_modules(model: nn.Module, p: ForwardProbe) -> tuple[list[Finding], int]:
    """``torch.autograd.gradcheck`` (float64, fast mode) of each non-stock module on its own
    captured input; returns the findings and how many modules were checked."""
    modules = dict(model.named_modules())
    names = [n for n in p.inputs if _leaf(modules[n]) or p.custom_fn][:MAX_GRADCHECKS]
    failed: dict[str, str] = {}
    checked = 0
    for name in names:
        ok = _gradcheck(modules[name], p.inputs[name])
        if ok is None:
            continue
        checked += 1
        if not ok:
            failed[name] = type(modules[name]).__name__
    if not failed:
        return [], checked
    which = ", ".join(f"'{n}' ({t})" for n, t in failed.items())
    return [Finding(
        "model.gradcheck", "wrong_backward", "error", 1.0,
        f"numerical gradient check fails for {which}",
        {"failed": failed, "checked": checked},
        "the analytic gradient of these modules differs from finite differences: a custom "
        "backward is wrong, so training follows wrong gradients",
        note="fix the backward of the failing module (or use autograd instead of a custom one)",
    )], checked  # fmt: skip


def _gradcheck(module: nn.Module, x: torch.Tensor) -> bool | None:
    """True/False: the check passed/failed; None: not applicable (integer input, no grad)."""
    from torch.func import functional_call

    if not x.is_floating_point():
        return None
    m = copy.deepcopy(module).double().eval()
    params = {
        k: v.detach().clone().requires_grad_(v.requires_grad) for k, v in m.named_parameters()
    }
    names = [k for k, v in params.items() if v.requires_grad]
    inp = x.detach().double().clone().requires_grad_(True)

    def fn(inp: torch.Tensor, *ps: torch.Tensor) -> Any:
        return functional_call(m, {**params, **dict(zip(names, ps))}, (inp,))

    try:
        return bool(torch.autograd.gradcheck(
            fn, (inp, *(params[k] for k in names)), fast_mode=True, raise_exception=False,
            atol=1e-5, rtol=1e-3,
        ))  # fmt: skip
    except (RuntimeError, TypeError, ValueError):
        return None

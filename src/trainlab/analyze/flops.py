"""FLOPs with ``torch.utils.flop_counter.FlopCounterMode``: forward, forward+backward, per type.

Convention: ``FlopCounterMode`` counts **2 FLOPs per multiply-add** (a multiply and an add). The
"GFLOPS" column of torchvision's model documentation counts multiply-adds (1 per MAC): ResNet-50's
4.09 there is 8.18 GFLOPs here. :class:`FlopReport` gives both (``forward`` and ``macs``).

Grouped convolutions: the counter's backward formula ignores ``groups`` and counts the weight
gradient as if every output channel saw every input channel (a groups=8 conv's backward came out
at 9× its forward instead of 2×); trainlab's formula divides that term by ``groups`` (checked
against a hand count in tests/analyze/test_grouped_conv_flops.py).

The counter has formulas for matmuls, convolutions and attention kernels; element-wise ops,
normalisation and pooling are not counted (they are a few percent of a CNN's arithmetic), nor are
the fused RNN kernels (``aten.lstm`` …), which it has no formula for: models with RNN layers get a
note saying their figure is a lower bound.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import (
    FlopCounterMode,
    conv_flop_count,
    sdpa_backward_flop_count,
    sdpa_flop_count,
)

__all__ = ["FlopReport", "count_flops", "op_category", "CATEGORIES"]

CATEGORIES = ("conv", "linear", "attention/matmul", "other")


def op_category(op: Any) -> str:
    """The layer type an aten op's FLOPs belong to.

    ``mm``/``addmm`` are 2-D matmuls: ``nn.Linear`` (including attention's q/k/v and output
    projections and RNN gates); ``bmm``/``baddbmm`` and the fused attention kernels are the
    batched products of attention (scores ``QKᵀ`` and ``softmax·V``) and other batched matmuls.

    >>> op_category(torch.ops.aten.convolution), op_category(torch.ops.aten.addmm)
    ('conv', 'linear')
    """
    name = str(op).split(".")[-1]  # "aten.convolution_backward" → "convolution_backward"
    if "conv" in name:
        return "conv"
    if name in ("mm", "addmm", "linear"):
        return "linear"
    if name in ("bmm", "baddbmm", "matmul") or "attention" in name:
        return "attention/matmul"
    return "other"


def _cpu_sdpa(q: Any, k: Any, v: Any, *args: Any, out_shape: Any = None, **kw: Any) -> int:
    return sdpa_flop_count(q, k, v)  # shapes (N, heads, T, d): QKᵀ and softmax·V


def _cpu_sdpa_backward(
    grad_out: Any, q: Any, k: Any, v: Any, *args: Any, out_shape: Any = None, **kw: Any
) -> int:
    return sdpa_backward_flop_count(grad_out, q, k, v)


def _t(shape: Any) -> list[int]:
    return [shape[1], shape[0], *shape[2:]]  # swap batch and channel dims


def _conv_backward(
    grad_out_shape: Any,
    x_shape: Any,
    w_shape: Any,
    _bias: Any,
    _stride: Any,
    _padding: Any,
    _dilation: Any,
    transposed: bool,
    _output_padding: Any,
    groups: int,
    output_mask: Any,
    out_shape: Any = None,
    **kw: Any,
) -> int:
    """``aten.convolution_backward`` with ``groups`` respected (torch's formula ignores it)."""
    flops = 0
    if output_mask[0]:  # grad input: a (transposed) conv with the grouped weight: exact already
        flops += conv_flop_count(grad_out_shape, w_shape, out_shape[0], not transposed)
    if output_mask[1]:
        # grad weight as one conv over all (input, output) channel pairs; with groups each
        # output channel only meets the C_in / groups inputs of its group.
        a, b = (grad_out_shape, x_shape) if transposed else (x_shape, grad_out_shape)
        flops += conv_flop_count(_t(a), _t(b), _t(out_shape[1]), transposed=False) // groups
    return flops


def _extra_formulas() -> dict[Any, Any]:
    """Formulas the counter lacks or gets wrong: the CPU flash-attention kernel that
    ``F.scaled_dot_product_attention`` runs on the CPU (same count as the CUDA kernels), and
    the backward of grouped convolutions."""
    aten = torch.ops.aten
    out: dict[Any, Any] = {aten.convolution_backward: _conv_backward}
    for name, fn in (
        ("_scaled_dot_product_flash_attention_for_cpu", _cpu_sdpa),
        ("_scaled_dot_product_flash_attention_for_cpu_backward", _cpu_sdpa_backward),
    ):
        if hasattr(aten, name):  # absent in some torch versions
            out[getattr(aten, name)] = fn
    return out


@dataclass
class FlopReport:
    """FLOPs (2 per multiply-add) of one forward and of one forward+backward at ``batch``."""

    batch: int
    forward: int
    train: int  # forward + backward (gradients of weights and of inputs to each layer)
    forward_by_type: dict[str, int]
    train_by_type: dict[str, int]
    forward_by_op: dict[str, int]
    notes: list[str] = field(default_factory=list)

    @property
    def macs(self) -> int:
        """Multiply-adds of one forward at ``batch``: torchvision's "GFLOPS" convention."""
        return self.forward // 2

    @property
    def forward_per_sample(self) -> float:
        return self.forward / self.batch

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "macs": self.macs, "forward_per_sample": self.forward_per_sample}


def _by_type(counts: dict[Any, int]) -> dict[str, int]:
    out = dict.fromkeys(CATEGORIES, 0)
    for op, n in counts.items():
        out[op_category(op)] += int(n)
    return out


def _notes(model: nn.Module) -> list[str]:
    notes = []
    if any(isinstance(m, nn.RNNBase) for m in model.modules()):
        notes.append(
            "RNN/LSTM/GRU kernels are not counted by torch.utils.flop_counter: "
            "the figures are a lower bound"
        )
    if any(isinstance(m, nn.modules.conv._ConvNd) and m.groups > 1 for m in model.modules()):
        notes.append(
            "grouped convolutions: weight-gradient FLOPs divided by groups (torch's counter "
            "counts them as if ungrouped, inflating forward+backward)"
        )
    return notes


def count_flops(
    model: nn.Module,
    inputs: tuple[torch.Tensor, ...],
    *,
    loss_fn: Callable[[Any], torch.Tensor] | None = None,
    backward: bool = True,
) -> FlopReport:
    """Count the FLOPs of ``model(*inputs)`` and, with ``backward``, of its backward pass.

    ``loss_fn`` turns the output into a scalar for the backward (default: the sum of the means of
    the floating outputs). Works on the meta device, where no arithmetic runs at all.

    >>> r = count_flops(nn.Linear(3, 4, bias=False), (torch.randn(2, 3),))
    >>> r.forward, r.macs   # 2 samples × 4 outputs × 3 inputs multiply-adds
    (48, 24)
    """
    from trainlab.analyze.target import surrogate_loss

    loss_fn = loss_fn or surrogate_loss
    was_training = model.training
    model.eval()  # forward as in inference (same matmuls; dropout and BN statistics left alone)
    # Autograd stays on: under no_grad, eval-mode nn.MultiheadAttention/TransformerEncoderLayer
    # take a fused "fast path" whose attention products the counter never sees.
    with FlopCounterMode(display=False, custom_mapping=_extra_formulas()) as fwd:
        model(*inputs)
    train_counts: dict[Any, int] = {}
    if backward:
        model.train()
        with FlopCounterMode(display=False, custom_mapping=_extra_formulas()) as both:
            loss_fn(model(*inputs)).backward()
        train_counts = both.get_flop_counts()["Global"]
        model.zero_grad(set_to_none=True)  # leave no gradients behind
    model.train(was_training)
    fwd_counts = fwd.get_flop_counts()["Global"]
    return FlopReport(
        batch=int(inputs[0].shape[0]) if inputs and inputs[0].dim() else 1,
        forward=int(fwd.get_total_flops()),
        train=int(sum(train_counts.values())),
        forward_by_type=_by_type(fwd_counts),
        train_by_type=_by_type(train_counts),
        forward_by_op={str(op): int(n) for op, n in fwd_counts.items()},
        notes=_notes(model),
    )

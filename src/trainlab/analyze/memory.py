"""Memory of training: parameters, gradients, optimizer state, activations (estimated, measured).

- parameters and gradients: bytes of the tensors (a gradient per trainable parameter, same dtype);
- optimizer state: measured by stepping once and summing the state tensors (SGD with momentum
  keeps 1 buffer per weight, Adam 2: ``exp_avg`` and ``exp_avg_sq``);
- activations, estimated: bytes of the tensors autograd saves for the backward pass, recorded with
  ``torch.autograd.graph.saved_tensors_hooks`` (each storage once, weights excluded);
- parameters by layer type: conv, linear, norm, embedding, other (the memory side of the FLOPs
  split: fully connected layers hold most of AlexNet's and VGG's weights, convolutions most of
  their arithmetic);
- inference: the measured peak of one eval-mode forward without autograd, at the same batch;
- measured: the peak of one whole training step above what was allocated before it: on CUDA the
  allocator's peak (``max_memory_allocated``), on the CPU the growth of the process's peak
  resident memory (Linux ``VmHWM``, reset through ``/proc/self/clear_refs``). The CPU figure
  includes temporaries the estimate leaves out and misses memory the allocator reuses.
"""

from __future__ import annotations

import ctypes
import gc
import resource
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "MemoryReport",
    "memory_report",
    "parameter_bytes",
    "parameter_bytes_by_type",
    "optimizer_state_bytes",
    "saved_tensor_bytes",
    "measure_peak",
    "available_memory",
]


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def parameter_bytes(model: nn.Module) -> tuple[int, int]:
    """(bytes of all parameters, bytes of the trainable ones) — shared parameters once.

    >>> parameter_bytes(nn.Linear(10, 10))   # 110 float32 values
    (440, 440)
    """
    params = list(model.parameters())  # .parameters() already de-duplicates shared tensors
    return sum(map(_nbytes, params)), sum(_nbytes(p) for p in params if p.requires_grad)


def _layer_type(module: nn.Module) -> str:
    if isinstance(module, nn.modules.conv._ConvNd):
        return "conv"
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)):
        return "norm"
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        return "embedding"
    return "other"


def parameter_bytes_by_type(model: nn.Module) -> dict[str, int]:
    """Bytes of parameters per layer type (``conv``, ``linear``, ``norm``, ``embedding``,
    ``other``: a parameter held by a module itself, such as a class token), shared ones once.

    >>> parameter_bytes_by_type(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 2)))
    {'conv': 80, 'linear': 72, 'norm': 0, 'embedding': 0, 'other': 0}
    """
    out = dict.fromkeys(("conv", "linear", "norm", "embedding", "other"), 0)
    seen: set[int] = set()
    for module in model.modules():
        for p in module.parameters(recurse=False):
            if id(p) not in seen:
                seen.add(id(p))
                out[_layer_type(module)] += _nbytes(p)
    return out


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> tuple[int, int]:
    """(bytes of every state tensor, bytes of those shaped like their parameter).

    The second figure is the per-weight state (momentum, Adam's two moments) without scalar
    bookkeeping such as Adam's ``step`` counters. Zero before the first ``step()``.

    >>> p = nn.Parameter(torch.zeros(3))
    >>> opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    >>> p.grad = torch.ones(3); opt.step()
    >>> optimizer_state_bytes(opt)
    (12, 12)
    """
    total = per_weight = 0
    for p, state in optimizer.state.items():
        for value in state.values():
            if isinstance(value, torch.Tensor):
                total += _nbytes(value)
                per_weight += _nbytes(value) if value.shape == p.shape else 0
    return total, per_weight


def saved_tensor_bytes(fn: Callable[[], Any], exclude: Sequence[torch.Tensor] = ()) -> int:
    """Bytes autograd saves for the backward while ``fn()`` runs (each storage counted once).

    Tensors sharing storage with ``exclude`` (the weights, which exist anyway) are left out.

    >>> lin = nn.Linear(100, 10)
    >>> saved_tensor_bytes(lambda: lin(torch.randn(8, 100)), list(lin.parameters()))
    3200
    """
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in skip:
            seen[ptr] = storage.nbytes()
        # Not ``t`` itself: a node that saves its own output would then hold its output, whose
        # grad_fn is that node, a cycle through C++ the collector cannot see. Without a
        # backward to free it, every call leaked the graph (~250 MB per ResNet-50 call).
        return t.detach()

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


def _read_status_kib(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])  # "VmHWM:   123456 kB"
    except (OSError, ValueError, IndexError):
        return None
    return None


def _release_free_memory() -> None:
    # Hand freed heap pages back to the OS first, so the step's growth shows in the RSS.
    # Young generations only: a full collection walks every object (~0.2 s with torch loaded),
    # and tensors of earlier steps are freed by reference counting, not by the collector.
    gc.collect(1)
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_cpu_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # "5": reset VmHWM to the current RSS
        return True
    except OSError:
        return False


def measure_peak(step: Callable[[], Any], device: torch.device) -> tuple[int, str]:
    """(peak bytes above the starting point while ``step()`` runs, how it was measured).

    >>> nbytes, how = measure_peak(lambda: torch.ones(1 << 20), torch.device("cpu"))
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - base, "cuda peak allocated"
    _release_free_memory()
    if _reset_cpu_peak():
        base = _read_status_kib("VmRSS") or 0
        step()
        peak = _read_status_kib("VmHWM") or base
        return max(peak - base, 0) * 1024, "cpu peak RSS growth (VmHWM)"
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    step()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (after - before) * 1024, "cpu growth of the process's peak RSS (lower bound)"


def available_memory(device: torch.device) -> int | None:
    """Bytes a run may use: the GPU's total memory, or the CPU's ``MemAvailable``."""
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory)
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


@dataclass
class MemoryReport:
    """Bytes of one training step at ``batch`` (see the module docstring for each figure)."""

    batch: int
    params: int
    grads: int
    optimizer: int
    optimizer_per_weight: float  # per-weight state ÷ trainable parameter bytes: SGD-m 1, Adam 2
    activations: int  # estimated: saved for backward
    measured_peak: int  # one training step, above the memory held before it
    measured_how: str
    inference_peak: int = 0  # one eval forward without autograd, above the memory before it
    params_by_type: dict[str, int] = field(default_factory=dict)

    @property
    def estimated_total(self) -> int:
        return self.params + self.grads + self.optimizer + self.activations

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "estimated_total": self.estimated_total}


def memory_report(target: Any, batch: int) -> MemoryReport:
    """Memory of the target's training step at ``batch`` samples.

    ``target`` is a :class:`trainlab.analyze.target.Target`. Steps its optimizer once.

    >>> from trainlab.analyze.target import model_target
    >>> r = memory_report(model_target("mlp", {"in_features": 8}, device="cpu"), 4)
    >>> r.optimizer == r.params   # SGD with momentum: one buffer per weight
    True
    """
    model = target.model
    params, trainable = parameter_bytes(model)
    sample = target.make_sample(batch)
    model.train()

    def forward_loss() -> None:
        with target.autocast():
            target.loss(model, sample)

    activations = saved_tensor_bytes(forward_loss, list(model.parameters()))
    inference, _ = measure_peak(lambda: target.forward(sample), target.device)
    peak, how = measure_peak(lambda: target.train_step(sample), target.device)
    target.sync()
    state, per_weight = optimizer_state_bytes(target.optimizer)
    target.optimizer.zero_grad(set_to_none=True)
    return MemoryReport(
        batch=batch,
        params=params,
        grads=trainable,
        optimizer=state,
        optimizer_per_weight=per_weight / trainable if trainable else 0.0,
        activations=activations,
        measured_peak=peak,
        measured_how=how,
        inference_peak=inference,
        params_by_type=parameter_bytes_by_type(model),
    )

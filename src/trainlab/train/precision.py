"""Device, precision and memory-format choices ("auto" resolves to what is fast here)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from trainlab.errors import ConfigError

__all__ = ["resolve_device", "resolve_precision", "autocast", "wants_channels_last", "bf16_fast"]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(
            f"train.device: unknown device '{name}'; valid: auto, cpu, cuda"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device: '{name}' asked for, but CUDA is not available here")
    return dev


def bf16_fast(device: torch.device) -> bool:
    """True where bf16 matmuls run natively (CUDA with bf16, CPUs with AVX512-BF16/AMX)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(name: str, device: torch.device) -> str:
    if name == "auto":
        if bf16_fast(device):
            return "bf16"
        return "fp16" if device.type == "cuda" else "fp32"
    if name == "fp16" and device.type != "cuda":
        raise ConfigError("train.precision: fp16 needs CUDA; use bf16 or fp32 on the CPU")
    return name


def autocast(precision: str, device: torch.device) -> Callable[[], Any]:
    """A factory of autocast contexts for the resolved precision (a no-op for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return lambda: torch.autocast(device.type, dtype=dtype)


def wants_channels_last(setting: bool | str, model: nn.Module, precision: str) -> bool:
    """auto: on for conv nets in reduced precision, where oneDNN/cuDNN kernels prefer NHWC."""
    if setting != "auto":
        return bool(setting)
    has_conv = any(isinstance(m, nn.Conv2d) for m in model.modules())
    return has_conv and precision in ("bf16", "fp16")

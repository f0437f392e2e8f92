"""``model.init_from``: start a run from another run's weights (transfer learning), a
``.safetensors`` file, or a PyTorch ``.pth``/``.pt`` state dict (loaded with
``weights_only=True``, e.g. torchvision's published weights for the torchvision-compatible
architectures).

Tensors are matched by name and shape; a state dict with none of the model's names but the
same sequence of shapes (torchvision's models for trainlab's torchvision-compatible builders)
is matched by position. The classification head (the last ``Linear`` or
convolution, whose output size is the number of classes) keeps its fresh initialisation when
its shape differs: that is transfer to a task with other classes. Any other shape mismatch is an
error naming the tensor. What was loaded, what is new and what was skipped is returned (and
``trainlab train`` writes it to ``init_from.json`` in the run directory).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainlab.errors import ConfigError

__all__ = ["init_from", "read_weights", "head_names", "read_structure", "resize_layers", "Unfreeze",
           "same_layout", "summary_line"]

WHERE = "model.init_from"


def read_weights(source: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a run directory (its best checkpoint, EMA weights when it kept them),
    a ``.safetensors`` file, or a ``.pth``/``.pt`` file (``weights_only=True``)."""
    from safetensors.torch import load_file

    p = Path(source).expanduser()
    if p.is_dir():
        from trainlab.train.checkpoint import resolve_checkpoint

        ckpt = resolve_checkpoint(p, "best")  # CheckpointError when the run has none
        ema = ckpt / "ema.safetensors"
        if ema.is_file():
            return {k.removeprefix("module."): v for k, v in load_file(str(ema)).items()
                    if k != "n_averaged"}  # fmt: skip
        return load_file(str(ckpt / "model.safetensors"))
    if not p.is_file():
        raise ConfigError(f"{WHERE}={source}: no such run directory or file")
    try:
        if p.suffix == ".safetensors":
            return load_file(str(p))
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt or pickled objects: many error types, one meaning
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise ConfigError(f"{WHERE}={source}: cannot read weights ({first})") from None
    for key in ("state_dict", "model", "model_state_dict"):  # common checkpoint wrappers
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ConfigError(f"{WHERE}={source}: not a state dict of tensors")
    return obj


def read_structure(source: str | Path) -> dict[str, dict[str, int]] | None:
    """Layer sizes saved by ``trainlab prune --structured`` in a safetensors file's metadata."""
    import json

    from safetensors import safe_open

    p = Path(source).expanduser()
    if p.suffix != ".safetensors" or not p.is_file():
        return None
    with safe_open(str(p), "pt") as f:
        meta = f.metadata() or {}
    raw = meta.get("trainlab_structure")
    return json.loads(raw) if raw else None


def resize_layers(model: nn.Module, sizes: dict[str, dict[str, int]],
                  src: dict[str, torch.Tensor]) -> int:  # fmt: skip
    """Give ``model``'s layers the sizes of a structurally pruned copy: size attributes from
    ``sizes``, empty parameters and buffers of the shapes in ``src`` (filled by the load)."""
    resized = 0
    for name, attrs in sizes.items():
        try:
            mod = model.get_submodule(name)
        except AttributeError:
            raise ConfigError(f"{WHERE}: the pruned weights name layer '{name}', which this "
                              "model does not have") from None  # fmt: skip
        for attr, value in attrs.items():
            setattr(mod, attr, value)
        for pname, param in list(mod.named_parameters(recurse=False)):
            new = src.get(f"{name}.{pname}")
            if new is not None and new.shape != param.shape:
                setattr(mod, pname, nn.Parameter(torch.empty_like(new)))
                resized += 1
        for bname, buf in list(mod.named_buffers(recurse=False)):
            new = src.get(f"{name}.{bname}")
            if buf is not None and new is not None and new.shape != buf.shape:
                mod.register_buffer(bname, torch.empty_like(new))
    return resized


def head_names(model: nn.Module) -> set[str]:
    """Parameter/buffer names of the output layer: the last Linear or convolution."""
    last = None
    for name, mod in model.named_modules():
        if isinstance(mod, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            last = name
    if last is None:
        return set()
    return {f"{last}.{k}" for k, _ in model.get_submodule(last).named_parameters(recurse=False)}


def init_from(model: nn.Module, source: str | Path, skip: list[str] | tuple[str, ...] = ()
              ) -> dict[str, Any]:  # fmt: skip
    """Load ``source``'s tensors into ``model`` by name and shape; return the report.
    Tensors whose names start with one of ``skip`` (``model.init_skip``) keep their fresh
    initialisation: a head for other classes of the same number.

    >>> report = init_from(model, "runs/mnist-pretrain")  # doctest: +SKIP
    >>> report["new"]                                     # doctest: +SKIP
    ['head.3.weight', 'head.3.bias']
    """
    src = read_weights(source)
    sizes = read_structure(source)
    resized = resize_layers(model, sizes, src) if sizes else 0
    own = model.state_dict()
    head = head_names(model)
    by_position = not set(src) & set(own) and same_layout(src, own, head)
    if by_position:  # e.g. torchvision's own names for the same architecture
        src = dict(zip(own, src.values(), strict=True))
    loaded, new, replaced = [], [], []
    for name, t in own.items():
        if name not in src or (skip and name.startswith(tuple(skip))):
            new.append(name)
        elif src[name].shape == t.shape:
            loaded.append(name)
        elif name in head:
            replaced.append(f"{name} {list(src[name].shape)} -> {list(t.shape)}")
        else:
            raise ConfigError(
                f"{WHERE}={source}: tensor '{name}' has shape {list(src[name].shape)} there "
                f"and {list(t.shape)} in this model (only the head may differ)"
            )
    if not loaded:
        raise ConfigError(f"{WHERE}={source}: no tensor matches this model by name and shape "
                          f"(its names: {', '.join(list(src)[:4])}, …)")  # fmt: skip
    with torch.no_grad():
        for name in loaded:
            own[name].copy_(src[name])
    skipped = sorted(set(src) - set(own))
    return {"source": str(source), "loaded": loaded, "new": new, "head_replaced": replaced,
            "skipped": skipped, "resized": resized, "by_position": by_position}  # fmt: skip


def same_layout(src: dict[str, torch.Tensor], own: dict[str, torch.Tensor], head: set[str]) -> bool:
    """Whether ``src`` holds the same sequence of tensor shapes as ``own`` (the head's may
    differ): the same architecture under other module names, such as a torchvision model's
    state dict for trainlab's torchvision-compatible builders (``resnet18``, ``vgg11_bn``,
    ``mobilenet_v2``, ``densenet121``, ``efficientnet_b0`` …), whose tensors are registered
    in the same order. Tensors are then matched by position."""
    if len(src) != len(own):
        return False
    return all(a.shape == b.shape or name in head
               for (name, b), a in zip(own.items(), src.values(), strict=True))  # fmt: skip


def summary_line(report: dict[str, Any]) -> str:
    """One line for the console: counts and the names that are not loaded."""
    parts = [f"init_from {report['source']}: {len(report['loaded'])} tensors loaded"]
    if report.get("by_position"):
        parts[0] += " (matched by position: same layout under other names)"
    if report.get("resized"):
        parts.append(f"{report['resized']} tensors resized to the pruned layer sizes")
    if report["head_replaced"]:
        parts.append(f"head replaced ({'; '.join(report['head_replaced'])})")
    if report["new"]:
        parts.append(f"new: {', '.join(report['new'][:6])}" + (" …" if len(report["new"]) > 6
                                                               else ""))  # fmt: skip
    if report["skipped"]:
        parts.append(f"skipped {len(report['skipped'])}: {', '.join(report['skipped'][:4])}"
                     + (" …" if len(report["skipped"]) > 4 else ""))  # fmt: skip
    return "; ".join(parts)


class Unfreeze:
    """Callback of ``train.unfreeze_at_epoch``: turns gradients on for the tensors of each
    ``optim.freeze`` prefix once ``epochs`` (one number, or one per prefix) epochs are done.
    The tensors are in the optimizer from the start (without gradients they are not updated,
    nor decayed), so the learning-rate schedule covers them as any other."""

    def __init__(self, prefixes: list[str], epochs: int | list[int]) -> None:
        if not prefixes:
            raise ConfigError("train.unfreeze_at_epoch: nothing is frozen (set optim.freeze)")
        at = [epochs] * len(prefixes) if isinstance(epochs, int) else list(epochs)
        if len(at) != len(prefixes) or min(at) < 0:
            raise ConfigError(
                f"train.unfreeze_at_epoch: give one epoch (≥ 0), or one per optim.freeze prefix "
                f"({len(prefixes)}: {', '.join(prefixes)}); got {epochs}"
            )
        self.plan = list(zip(prefixes, at))
        self.unfrozen: list[str] = []

    def on_epoch_start(self, state: Any) -> None:
        for prefix, epoch in self.plan:
            if state.epoch >= epoch and prefix not in self.unfrozen:
                for name, p in state.model.named_parameters():
                    if name.startswith(prefix):
                        p.requires_grad_(True)
                self.unfrozen.append(prefix)

"""Atomic, self-validating checkpoints.

Layout of ``checkpoints/``::

    step-00000540/      model.safetensors  state.pt  COMMIT
    step-00001080/      ...
    latest              name of the newest complete checkpoint (replaced atomically)
    best                name of the best checkpoint by the monitored metric

A checkpoint is written into ``.tmp-step-…``, every file fsynced, then ``COMMIT`` written and the
folder renamed into place; only then do the pointers move. A crash at any moment leaves either
the previous checkpoint or the new one, never a half-written one that looks valid. Weights are
safetensors; the rest (optimizer, scheduler, RNG, position) is loaded with ``weights_only=True``.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from trainlab.errors import CheckpointError

__all__ = [
    "save_checkpoint",
    "load_checkpoint",
    "latest_checkpoint",
    "resolve_checkpoint",
    "rng_state",
    "set_rng_state",
    "prune_checkpoints",
]

COMMIT = "COMMIT"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def write_pointer(ckpt_dir: Path, pointer: str, target: str) -> None:
    """Atomically make ``ckpt_dir/pointer`` contain ``target``."""
    tmp = ckpt_dir / f".{pointer}.tmp"
    with open(tmp, "w") as f:
        f.write(target + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, ckpt_dir / pointer)
    _fsync_dir(ckpt_dir)


def rng_state() -> dict[str, Any]:
    """Every RNG the loop touches, in types ``torch.load(weights_only=True)`` accepts."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].copy()), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(
        tuple(state["python"][0:1]) + (tuple(state["python"][1]),) + tuple(state["python"][2:])
    )
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy(), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _unshared(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous CPU tensors that share no memory, as safetensors requires: channels_last
    weights are not contiguous, and tied weights (an LM's embedding and output) share storage;
    loading fills both names again."""
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for k, v in state.items():
        t = v.detach().contiguous().cpu()
        ptr = t.untyped_storage().data_ptr()
        out[k] = t.clone() if ptr in seen else t
        seen.add(ptr)
    return out


def save_checkpoint(
    ckpt_dir: Path,
    tag: str,
    model: nn.Module,
    payload: dict[str, Any],
    ema: nn.Module | None = None,
) -> Path:
    """Write ``ckpt_dir/tag`` atomically and point ``latest`` at it. I/O errors propagate.

    ``ema``: an averaged copy of the model, saved beside it as ``ema.safetensors``.
    """
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    final = ckpt_dir / tag
    tmp = ckpt_dir / f".tmp-{tag}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    weights = _unshared(model.state_dict())
    save_file(weights, str(tmp / "model.safetensors"))
    files = ["model.safetensors", "state.pt"]
    if ema is not None:
        ema_weights = _unshared(ema.state_dict())
        save_file(ema_weights, str(tmp / "ema.safetensors"))
        files.append("ema.safetensors")
    torch.save(payload, tmp / "state.pt")
    for f in files:
        _fsync_file(tmp / f)
    with open(tmp / COMMIT, "w") as f:
        f.write("ok\n")
        f.flush()
        os.fsync(f.fileno())
    _fsync_dir(tmp)
    if final.exists():  # same step saved twice (e.g. every-N-steps at an epoch end)
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync_dir(ckpt_dir)
    write_pointer(ckpt_dir, "latest", tag)
    return final


def is_valid(path: Path) -> bool:
    return (path / COMMIT).is_file() and (path / "model.safetensors").is_file()


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    """The checkpoint ``latest`` names, else the newest committed one, else None."""
    pointer = ckpt_dir / "latest"
    if pointer.is_file():
        cand = ckpt_dir / pointer.read_text().strip()
        if is_valid(cand):
            return cand
    valid = sorted(p for p in ckpt_dir.glob("step-*") if is_valid(p))
    return valid[-1] if valid else None


def resolve_checkpoint(run_dir: Path, which: str = "latest") -> Path:
    """``latest`` or ``best`` checkpoint of a run directory, or a :class:`CheckpointError`."""
    ckpt_dir = run_dir / "checkpoints"
    if which == "best" and (ckpt_dir / "best").is_file():
        cand = ckpt_dir / (ckpt_dir / "best").read_text().strip()
        if is_valid(cand):
            return cand
    found = latest_checkpoint(ckpt_dir) if ckpt_dir.is_dir() else None
    if found is None:
        raise CheckpointError(f"{run_dir}: no valid checkpoint in {ckpt_dir}")
    return found


def load_checkpoint(
    path: Path,
    model: nn.Module | None = None,
    ema: nn.Module | None = None,
    prefer_ema: bool = False,
) -> dict[str, Any]:
    """Load weights into ``model`` (and ``ema``) if given; return the state payload.

    ``prefer_ema``: load the EMA weights into ``model`` when the checkpoint has them (for
    evaluation of a run trained with ``train.ema_decay``).
    """
    try:
        has_ema = (path / "ema.safetensors").is_file()
        if model is not None and prefer_ema and has_ema:
            averaged = load_file(str(path / "ema.safetensors"))
            # AveragedModel keys are "module.<name>" plus its n_averaged counter.
            model.load_state_dict(
                {k.removeprefix("module."): v for k, v in averaged.items() if k != "n_averaged"}
            )
        elif model is not None:
            model.load_state_dict(load_file(str(path / "model.safetensors")))
        if ema is not None and has_ema:
            ema.load_state_dict(load_file(str(path / "ema.safetensors")))
        return torch.load(path / "state.pt", weights_only=True, map_location="cpu")
    except (OSError, RuntimeError) as e:
        raise CheckpointError(
            f"{path}: cannot load checkpoint ({str(e).splitlines()[0]})"
        ) from None


def prune_checkpoints(ckpt_dir: Path, keep: int) -> None:
    """Delete all but the ``keep`` newest checkpoints, never the one ``best`` names."""
    protected = set()
    for pointer in ("best", "latest"):
        p = ckpt_dir / pointer
        if p.is_file():
            protected.add(p.read_text().strip())
    done = sorted(p for p in ckpt_dir.glob("step-*") if is_valid(p))
    for old in done[:-keep]:
        if old.name not in protected:
            shutil.rmtree(old)

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

``COMMIT`` records the size and SHA-256 of every file of the checkpoint; loading checks them,
so a file damaged afterwards (a truncated copy, bit rot, a replaced ``state.pt``) is reported in
one line instead of being loaded, and :func:`resolve_checkpoint` falls back to the newest intact
checkpoint. Checkpoints of older versions (``COMMIT`` reads ``ok``) still load, unchecked.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save
from torch import nn

from trainlab.errors import CheckpointError, StorageError

__all__ = [
    "save_checkpoint",
    "load_checkpoint",
    "latest_checkpoint",
    "resolve_checkpoint",
    "rng_state",
    "set_rng_state",
    "prune_checkpoints",
    "verify_checkpoint",
    "storage_error",
    "step_dirs",
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


def storage_error(exc: OSError, path: Path, kept: str = "") -> StorageError:
    """One line for a write that failed (ENOSPC, EIO, EROFS…): where, why, what is intact."""
    why = exc.strerror or str(exc)
    note = f"; {kept}" if kept else ""
    return StorageError(f"cannot write {exc.filename or path}: {why}{note}")


def _write_bytes(path: Path, data: bytes) -> dict[str, Any]:
    """Write ``data`` to ``path`` and fsync it; its size and SHA-256 for the manifest."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _serialized(
    model: nn.Module, payload: dict[str, Any], ema: nn.Module | None
) -> dict[str, bytes]:
    # Serialised in memory, then written by Python: a full disk surfaces as an OSError with
    # its errno (safetensors and torch.save would report it as their own error types).
    files = {"model.safetensors": save(_unshared(model.state_dict()))}
    if ema is not None:
        files["ema.safetensors"] = save(_unshared(ema.state_dict()))
    buf = io.BytesIO()
    torch.save(payload, buf)
    files["state.pt"] = buf.getvalue()
    return files


def save_checkpoint(
    ckpt_dir: Path,
    tag: str,
    model: nn.Module,
    payload: dict[str, Any],
    ema: nn.Module | None = None,
) -> Path:
    """Write ``ckpt_dir/tag`` atomically and point ``latest`` at it.

    ``ema``: an averaged copy of the model, saved beside it as ``ema.safetensors``. A write
    that fails (disk full, I/O error, read-only folder) removes the partial copy, leaves every
    earlier checkpoint as it was and raises :class:`StorageError`.

    >>> save_checkpoint(Path("run/checkpoints"), "step-00000010", model, {})  # doctest: +SKIP
    """
    files = _serialized(model, payload, ema)
    tmp = ckpt_dir / f".tmp-{tag}"
    try:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        manifest = {name: _write_bytes(tmp / name, data) for name, data in files.items()}
        commit = json.dumps({"format": 2, "files": manifest}, indent=1) + "\n"
        _write_bytes(tmp / COMMIT, commit.encode())
        _fsync_dir(tmp)
        final = ckpt_dir / tag
        if final.exists():  # same step saved twice (e.g. every-N-steps at an epoch end)
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(ckpt_dir)
        write_pointer(ckpt_dir, "latest", tag)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)  # give back the space the partial copy took
        prev = latest_checkpoint(ckpt_dir) if ckpt_dir.is_dir() else None
        kept = (
            f"checkpoint {prev.name} is intact (free space, then: trainlab train --resume "
            f"{ckpt_dir.parent})"
            if prev is not None
            else "no checkpoint was saved yet: start the run again once it can write there"
        )
        raise storage_error(e, ckpt_dir / tag, kept) from None
    return final


def is_valid(path: Path) -> bool:
    """Committed (a ``COMMIT`` marker and the weights exist); see :func:`verify_checkpoint`
    for the checksums."""
    return (path / COMMIT).is_file() and (path / "model.safetensors").is_file()


def _manifest(path: Path) -> dict[str, Any] | None:
    """The files ``COMMIT`` lists with their size and SHA-256; None for an older checkpoint
    whose marker holds no checksums."""
    text = (path / COMMIT).read_text(errors="replace")
    if text.strip() == "ok":
        return None
    try:
        files = json.loads(text)["files"]
        assert isinstance(files, dict) and all(
            isinstance(v["size"], int) and isinstance(v["sha256"], str) for v in files.values()
        )
    except (ValueError, KeyError, TypeError, AssertionError):
        raise ValueError("COMMIT: unreadable (not the checksum list trainlab writes)") from None
    return files


def _check_file(path: Path, name: str, want: dict[str, Any]) -> str | None:
    f = path / name
    if not f.is_file():
        return f"{name}: missing"
    size = f.stat().st_size
    if size != want["size"]:
        return f"{name}: {size} bytes, expected {want['size']} (truncated or overwritten)"
    with open(f, "rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    if digest != want["sha256"]:
        return f"{name}: SHA-256 differs from the one recorded at save (damaged or replaced)"
    return None


def verify_checkpoint(path: Path) -> str | None:
    """What is wrong with checkpoint ``path`` (one phrase naming the file), or None when every
    file has the size and SHA-256 its ``COMMIT`` records. An older checkpoint without checksums
    passes when its files exist.

    >>> verify_checkpoint(Path("runs/r/checkpoints/step-00000540"))  # doctest: +SKIP
    'model.safetensors: 1032 bytes, expected 52344 (truncated or overwritten)'
    """
    if not (path / COMMIT).is_file():
        return "incomplete (no COMMIT marker: the save never finished)"
    try:
        manifest = _manifest(path)
        if manifest is None:
            missing = [n for n in ("model.safetensors", "state.pt") if not (path / n).is_file()]
            return f"{missing[0]}: missing" if missing else None
        for name, want in manifest.items():
            problem = _check_file(path, name, want)
            if problem:
                return problem
    except ValueError as e:
        return str(e)
    except OSError as e:
        return f"unreadable ({e.strerror or e})"
    return None


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    """The checkpoint ``latest`` names, else the newest committed one, else None (committed
    only: the checksums are checked by :func:`resolve_checkpoint` and on load)."""
    pointer = ckpt_dir / "latest"
    if pointer.is_file():
        cand = ckpt_dir / pointer.read_text(errors="replace").strip()
        if cand.parent == ckpt_dir and is_valid(cand):
            return cand
    valid = [p for p in step_dirs(ckpt_dir) if is_valid(p)]
    return valid[-1] if valid else None


def step_dirs(ckpt_dir: Path) -> list[Path]:
    """``step-*`` folders of ``ckpt_dir``, oldest first (by step number)."""
    found = [p for p in ckpt_dir.glob("step-*") if p.is_dir() and step_of(p) is not None]
    return sorted(found, key=lambda p: step_of(p) or 0)


def step_of(path: Path) -> int | None:
    """The step a checkpoint folder's name gives (``step-00000540`` → 540)."""
    digits = path.name.removeprefix("step-")
    return int(digits) if path.name.startswith("step-") and digits.isdigit() else None


def _pointer(ckpt_dir: Path, which: str) -> Path | None:
    p = ckpt_dir / which
    if not p.is_file():
        return None
    name = p.read_text(errors="replace").strip()
    return ckpt_dir / name if name and "/" not in name and name not in (".", "..") else None


def _say(message: str) -> None:
    print(f"trainlab: warning: {message}", file=sys.stderr, flush=True)


def resolve_checkpoint(
    run_dir: Path, which: str = "latest", report: Callable[[str], None] | None = _say
) -> Path:
    """The ``latest`` or ``best`` checkpoint of a run directory, checked against its checksums.

    A damaged one is reported through ``report`` (one line: which file, what is wrong, which
    checkpoint is used instead and how many steps older it is) and the newest intact checkpoint
    is returned instead; with none intact, a :class:`CheckpointError` lists what was found.

    >>> resolve_checkpoint(Path("runs/r"))  # doctest: +SKIP
    PosixPath('runs/r/checkpoints/step-00000540')
    """
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / "checkpoints"
    if not ckpt_dir.is_dir():
        raise CheckpointError(
            f"{run_dir}: no valid checkpoint (no checkpoints folder: was the run ever saved?)"
        )
    wanted = _pointer(ckpt_dir, which) if which == "best" else None
    wanted = wanted if wanted is not None and is_valid(wanted) else latest_checkpoint(ckpt_dir)
    damage = verify_checkpoint(wanted) if wanted is not None else None
    if wanted is not None and damage is None:
        return wanted
    found: list[str] = []
    for cand in reversed(step_dirs(ckpt_dir)):
        problem = verify_checkpoint(cand)
        if problem is None:
            if wanted is not None and report is not None:
                report(_fallback_message(wanted, cand, which, damage or "damaged"))
            return cand
        found.append(f"{cand.name} ({problem})")
    listed = "; ".join(found) if found else "none"
    raise CheckpointError(
        f"{run_dir}: no valid checkpoint (none intact in {ckpt_dir}); found: {listed}"
    )


def _fallback_message(wanted: Path, used: Path, which: str, problem: str) -> str:
    lost = (step_of(wanted) or 0) - (step_of(used) or 0)
    cost = f"{lost} steps older" if lost > 0 else "the newest intact one"
    return (
        f"checkpoint {wanted} is damaged ({problem}); using {used.name} as the {which} "
        f"checkpoint instead ({cost})"
    )


def load_checkpoint(
    path: Path,
    model: nn.Module | None = None,
    ema: nn.Module | None = None,
    prefer_ema: bool = False,
) -> dict[str, Any]:
    """Check the checksums, load weights into ``model`` (and ``ema``) if given; return the
    state payload. A damaged, tampered or mismatched checkpoint raises :class:`CheckpointError`.

    ``prefer_ema``: load the EMA weights into ``model`` when the checkpoint has them (for
    evaluation of a run trained with ``train.ema_decay``).

    >>> payload = load_checkpoint(resolve_checkpoint(Path("runs/r")), model)  # doctest: +SKIP
    """
    problem = verify_checkpoint(path)
    if problem is not None:
        raise CheckpointError(f"{path}: {problem}")
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
    except Exception as e:  # noqa: BLE001 - safetensors, unpickling and shape errors alike
        lines = [x.strip() for x in str(e).strip().splitlines()] or [type(e).__name__]
        first = " ".join(lines[:2]) if lines[0].endswith(":") else lines[0]  # load_state_dict
        hint = "; the model options differ from the run's" if "state_dict" in first else ""
        raise CheckpointError(f"{path}: cannot load checkpoint ({first[:400]}){hint}") from None


def prune_checkpoints(ckpt_dir: Path, keep: int) -> None:
    """Delete all but the ``keep`` newest checkpoints, never the one ``best`` names."""
    protected = set()
    for pointer in ("best", "latest"):
        p = ckpt_dir / pointer
        if p.is_file():
            protected.add(p.read_text().strip())
    done = [p for p in step_dirs(ckpt_dir) if is_valid(p)]
    for old in done[:-keep]:
        if old.name not in protected:
            shutil.rmtree(old)

"""The run directory: where everything a run produces lands."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from trainlab.errors import ConfigError

__all__ = ["create_run_dir", "env_info", "write_json"]


def create_run_dir(name: str, run_dir: str | Path | None = None, root: str | Path = "runs") -> Path:
    """A new, empty run directory: ``run_dir`` if given (must not hold files), else
    ``root/<name>-<YYYYmmdd-HHMMSS>`` (suffixed ``-2``, ``-3`` … if taken)."""
    if run_dir is not None:
        path = Path(run_dir)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise ConfigError(
                f"--run-dir {path}: already exists and is not empty; nothing was changed "
                "(use --resume to continue that run, or choose another folder)"
            )
        path.mkdir(parents=True, exist_ok=True)
        return path
    stem = Path(root) / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, i = stem, 1
    while True:
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            i += 1
            path = stem.with_name(f"{stem.name}-{i}")


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temporary file + rename), so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2, default=str)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:  # (a full disk) name the file: a failed flush() carries no name
        tmp.unlink(missing_ok=True)
        raise OSError(e.errno, e.strerror, str(path)) from None


def _git(*args: str) -> str | None:
    # Asked in trainlab's own source folder, not the working directory: a run started from
    # another folder still records the commit of the code that ran (None when trainlab is
    # installed from a wheel, outside any checkout).
    source = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "-C", str(source), *args], capture_output=True, text=True,
                             timeout=5, check=True)  # fmt: skip
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def env_info(device: torch.device, precision: str, channels_last: bool) -> dict[str, Any]:
    """Python, torch, device, CPU capability and git commit of the code that ran."""
    status = _git("status", "--porcelain")
    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "device": str(device),
        "precision": precision,
        "channels_last": channels_last,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
        "argv": sys.argv,
    }
    if device.type == "cuda":
        info["cuda"] = torch.version.cuda
        info["gpu"] = torch.cuda.get_device_name(device)
    return info

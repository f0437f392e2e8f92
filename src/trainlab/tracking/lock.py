"""One writer per run directory: an OS lock on ``<run>/.lock``.

``fcntl.flock`` locks belong to the open file, so the kernel releases them when the process
ends however it ends (SIGKILL, a crash, a power cut): a lock never stays stuck. The file keeps
the holder's PID and command for the message a second writer gets.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from trainlab.errors import CheckpointError, RunLocked, StorageError

__all__ = ["run_lock", "LOCK_NAME"]

LOCK_NAME = ".lock"


def _holder(f: IO[str]) -> str:
    f.seek(0)
    lines = [x.strip() for x in f.read().splitlines() if x.strip()]
    return f" ({lines[-1][:200]})" if lines else ""


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run directory's writer lock for the duration of the block; a
    :class:`RunLocked` error when another live process holds it.

    >>> with run_lock(Path("runs/r")):  # doctest: +SKIP
    ...     train_more()
    """
    try:
        import fcntl
    except ImportError:  # Windows: no flock; one writer is the user's responsibility there
        yield
        return
    if not Path(run_dir).is_dir():
        raise CheckpointError(f"{run_dir}: no such run directory")
    path = Path(run_dir) / LOCK_NAME
    try:
        f = open(path, "a+")
    except OSError as e:
        raise StorageError(f"cannot write {path}: {e.strerror or e}") from None
    try:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLocked(
                f"{run_dir}: another trainlab process{_holder(f)} is writing this run "
                "directory; wait for it to end (or stop it), then try again"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}: {' '.join(sys.argv[:3])}\n")
        f.flush()
        yield
        f.truncate(0)  # still holding the lock: the next holder finds no stale name
    finally:
        f.close()  # releases the lock; the file stays (removing it would race a new holder)

"""Modules a run needs later, imported in a background thread while start-up goes on.

A training run imports torchmetrics (≈ 1 s: its import pulls in torchvision and torch's compiler
stack) for the pre-flight check of its metrics, and TensorBoard's writer when its callbacks
start; torch's optimizers import the compiler stack (``torch._dynamo``) on their first step.
Started as soon as the recipe is read, these imports overlap with the work the main thread does
meanwhile with the GIL released: decompressing and splitting the data, building the model.
Python's per-module import locks make a module imported here and asked for by the main thread
at the same time wait for one complete import, never see half of one. ``TRAINLAB_PRELOAD=0``
turns it off (the figures in docs/benchmarks.md compare both).

>>> preload("json")  # returns at once; the import happens in a daemon thread
"""

from __future__ import annotations

import importlib
import os
import sys
import threading

__all__ = ["preload"]

_started: set[str] = set()


def _import_all(names: list[str]) -> None:
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001, S110 - the main thread's own import reports it
            pass


def preload(*names: str) -> threading.Thread | None:
    """Import ``names``, in order, in a daemon thread; modules already imported or already
    being preloaded are skipped. Returns the thread (None when there is nothing to do)."""
    if os.environ.get("TRAINLAB_PRELOAD", "1") == "0":
        return None
    todo = [n for n in names if n not in sys.modules and n not in _started]
    if not todo:
        return None
    _started.update(todo)
    thread = threading.Thread(target=_import_all, args=(todo,), name="trainlab-preload",
                              daemon=True)  # fmt: skip
    thread.start()
    return thread

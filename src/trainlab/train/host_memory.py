"""Host memory for CPU training: freed tensor memory is kept for reuse, not handed back.

glibc's ``malloc`` serves blocks above a threshold (at most 32 MB) with a fresh ``mmap`` and
unmaps them when they are freed. A CPU training step or evaluation batch allocates and frees
the same large activations every time (a batch of 1,000 bf16 maps of 32×27×27 is 46 MB), so
each batch page-faults and zero-fills all of them again. In a process where the allocation
history has not raised glibc's adaptive threshold, the default model's evaluation ran at
~18,000 images/s instead of ~25,000 (``bench/eval_throughput.py``, same machine, same code).

:func:`keep_freed_memory` makes every allocation come from the heap (``M_MMAP_MAX = 0``) and
never trims the heap (``M_TRIM_THRESHOLD``), as PyTorch's CUDA caching allocator keeps GPU memory:
the process keeps its peak resident size until it exits. The trainer calls it when it trains on
the CPU; ``TRAINLAB_SYSTEM_MALLOC=1`` in the environment leaves glibc's defaults alone. Off
glibc (macOS, Windows, musl) it does nothing.

>>> keep_freed_memory()  # doctest: +SKIP
True
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # mallopt parameters, from glibc's <malloc.h>
_applied = False


def keep_freed_memory() -> bool:
    """Keep freed host memory in the process for reuse (glibc only; once per process).

    Returns whether glibc's settings are now the ones described in the module doc.
    """
    global _applied
    if _applied:
        return True
    if os.environ.get("TRAINLAB_SYSTEM_MALLOC") == "1" or not sys.platform.startswith("linux"):
        return False
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return False
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, ValueError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # 2**31 - 1 bytes of free heap top before any trim: in effect, never.
    _applied = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    return _applied

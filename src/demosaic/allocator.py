"""Keep freed memory in the process: glibc's allocator tuned for tiled inference.

PyTorch's CPU tensors come from ``malloc``. glibc serves an allocation above its mmap
threshold (dynamic, never above 32 MiB unless set) with a fresh ``mmap`` and unmaps it on
``free``; below it, memory comes from the heap, whose free top is returned to the kernel past
the trim threshold. A tiled 24 MP frame allocates the same 10-60 MB activations window after
window, so by default every window pays the kernel's page faults again for memory it has
just given back. With both thresholds raised, a freed block is reused by the next window.

Measured (docs/lab/speed-work.md, "Whole process after the speed work"): the network's tiles of a
24 MP X-Trans frame on this project's 2-core CPU 3.18 -> 2.78 s at the old 2040 px windows,
3.88 -> 2.45 s at 3048 px (which became the default), the page faults of a tiling from
1.2 M to none once the memory is the process's own. The cost: memory freed late in a run stays in the
process until it exits (peak RSS is what it was; the 40 MP bound is re-measured there).

This is process-wide, so only the command lines call it (``demosaic-infer``, and
``demosaic-train``, whose every step allocates the same activations again: +5 % training
throughput on this CPU, docs/BENCHMARKS.md); a library user may call :func:`keep_freed_memory`
too. Elsewhere than glibc (macOS, Windows, musl) it does
nothing.
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger(__name__)

#: ``mallopt`` parameters (``<malloc.h>``).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

#: Allocations up to this size come from the heap, and this much free heap is kept.
DEFAULT_THRESHOLD = 1 << 30


def keep_freed_memory(threshold: int = DEFAULT_THRESHOLD) -> bool:
    """Raise glibc's mmap and trim thresholds to ``threshold`` bytes.

    Returns:
        Whether both were set (``False`` off Linux, without glibc's ``mallopt``, or where this
        glibc refuses the value: it then keeps its defaults).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        log.debug("no mallopt in this C library; allocator left as it is")
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    value = min(int(threshold), 2**31 - 1)
    ok = mallopt(M_MMAP_THRESHOLD, value) == 1 and mallopt(M_TRIM_THRESHOLD, value) == 1
    log.debug("malloc thresholds %s %d bytes", "raised to" if ok else "not raised to", value)
    return ok


__all__ = ["DEFAULT_THRESHOLD", "keep_freed_memory"]

"""Keep freed memory in the process between samples (glibc only; a no-op elsewhere).

Rendering a sample allocates and frees a few dozen image-sized arrays. By default glibc serves
each one above 128 KiB with a fresh `mmap` and hands memory back to the kernel as soon as it is
freed, so every sample pays page faults and zeroing for memory it just released: measured at
0.5-1.4 ms of a 1-2.5 ms structured op on 256x256 images. Serving those sizes from the heap and
not trimming it removes that cost; the retained memory is bounded by the largest sample's
working set. Arrays above 32 MiB (large scans) still use `mmap`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


@cache
def keep_freed_memory() -> bool:
    """Tune this process's allocator once; True when it took effect (glibc), False otherwise."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS, Windows)
        return False
    return all(
        mallopt(option, value) == 1
        for option, value in ((_M_MMAP_THRESHOLD, 32 << 20), (_M_TRIM_THRESHOLD, 256 << 20), (_M_TOP_PAD, 16 << 20))
    )

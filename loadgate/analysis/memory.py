"""Memory behaviour while the analysis runs: no huge-page advice, freed blocks kept for reuse."""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import numpy as np


@contextmanager
def memory_tuned() -> Iterator[None]:
    """Allocate without numpy's transparent-huge-page advice, and keep freed memory for reuse, while inside.

    The analysis allocates and frees a few hundred arrays of 1-30 MB. With the kernel's THP 'madvise'
    mode, each advised 2 MB fault may stall on memory compaction: at 10M samples that made a fresh
    process's analysis 10-40% slower and erratic (bench/analyze_speed.py); 4 KB pages are steady. And
    glibc returns such blocks to the kernel on free, so the next one faults in fresh zeroed pages
    (~160k faults at 10M samples); with the mmap threshold at its maximum and the heap left untrimmed
    while inside, freed blocks are reused: ~15% less time in the analysis, ~40 MB more peak memory.
    """
    toggle = getattr(getattr(getattr(np, "_core", None), "multiarray", None), "_set_madvise_hugepage", None)
    previous = toggle(False) if toggle is not None else None
    libc = _glibc()
    if libc is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    try:
        yield
    finally:
        if libc is not None:
            libc.mallopt(_M_TRIM_THRESHOLD, 128 << 10)  # glibc's default: freed memory goes back again
            libc.malloc_trim(0)
        if toggle is not None:
            toggle(previous)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # <malloc.h>


@lru_cache(maxsize=1)
def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (it has mallopt and malloc_trim), else None."""
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018  (AttributeError outside glibc, e.g. musl or macOS)
        libc.mallopt.argtypes, libc.malloc_trim.argtypes = [ctypes.c_int, ctypes.c_int], [ctypes.c_size_t]
        return libc
    except (AttributeError, OSError):
        return None

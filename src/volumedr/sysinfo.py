"""Memory checks: refuse work that would not fit before allocating it."""
from __future__ import annotations

import os

from .errors import MemoryBudgetError


def available_memory_bytes() -> int:
    """Memory available to new allocations (MemAvailable), or a large default."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 40


def check_fits(n_bytes: int, what: str, *, fraction: float = 0.8) -> None:
    """Raise MemoryBudgetError if ``n_bytes`` exceeds ``fraction`` of free memory."""
    avail = available_memory_bytes()
    if n_bytes > fraction * avail:
        raise MemoryBudgetError(
            f"{what} needs {n_bytes / 2**30:.1f} GiB but only {avail / 2**30:.1f} GiB of memory is free")


def _libc():
    global _LIBC
    if _LIBC is None:
        import ctypes
        import ctypes.util

        try:
            _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _LIBC.malloc_trim.argtypes = [ctypes.c_size_t]
            _LIBC.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        except (OSError, AttributeError):
            _LIBC = False
    return _LIBC


def limit_malloc_arenas(n: int = 2) -> None:
    """Let all threads share at most ``n`` glibc malloc arenas (``M_ARENA_MAX``) from now on.

    glibc gives threads arenas of their own, up to eight per core; a long-running program that starts
    a thread per job keeps freed arrays resident in each of them.  A no-op where glibc is not the C
    library.
    """
    libc = _libc()
    if libc:
        libc.mallopt(-8, int(n))  # M_ARENA_MAX


def release_free_memory() -> None:
    """Hand memory that Python and NumPy have freed back to the operating system (glibc ``malloc_trim``).

    Every worker thread gets its own glibc malloc arena, and freed slices and projections stay in them
    as resident memory; a workstation that runs job after job in fresh threads would otherwise appear
    to grow without holding more data.  A no-op where glibc is not the C library.
    """
    libc = _libc()
    if libc:
        libc.malloc_trim(0)


_LIBC = None

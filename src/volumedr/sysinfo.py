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

"""glibc's malloc settings for shoal's long-running processes (agent and server); shared, below both.

glibc gives each thread that allocates its own malloc arena (up to 8 per core), and each arena
keeps the pages it freed: a process of many mostly idle threads (the server's request pool, the
agent's poller, reporter and health threads) pays for arenas it barely uses. Two suffice.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any

M_ARENA_MAX = -8  # glibc <malloc.h>
ARENAS = 2


def libc() -> Any:
    """The C library when it is glibc (has mallopt and malloc_trim); None otherwise."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        found = ctypes.CDLL(name)
        return found if hasattr(found, "mallopt") and hasattr(found, "malloc_trim") else None
    except OSError:
        return None


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas for this process (call before starting threads); False if not glibc."""
    found = libc()
    return bool(found is not None and found.mallopt(M_ARENA_MAX, arenas) == 1)

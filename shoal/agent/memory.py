"""The agent process's own memory: glibc malloc settings and a trim after reconciles.

Used by `shoal agent start` (agent.commands) before the agent's threads exist, and as the last
loop step (agent.assemble). The agent's RSS is a figure (issue 5: ≤ 60 MB with 20 containers):
glibc gives each thread that allocates its own malloc arena (up to 8 per core), so a dozen
mostly idle threads (poller, reporter, health, DNS, HTTP endpoints) each pin freed pages of their
own; two arenas suffice for a process that mostly waits. After a reconcile, freed memory is
handed back to the kernel (`malloc_trim`); after the first one, the objects that live for the
whole run (modules, models, the agent) are moved out of the cyclic GC's reach (`gc.freeze`),
so idle collections scan less. Only once: a frozen object that dies in a cycle is never freed.
"""

from __future__ import annotations

import gc
import importlib.util
import logging
import os
import sys
import time
from dataclasses import dataclass

from shoal.malloc import ARENAS, M_ARENA_MAX, libc, limit_arenas

__all__ = ["ARENAS", "M_ARENA_MAX", "limit_arenas", "release", "slim_imports", "use_system_malloc"]

log = logging.getLogger(__name__)

TRIM_EVERY_S = 60.0


def slim_imports() -> None:
    """Load only the parts of pyroute2 and httpx the agent uses (call before importing the agent).

    `import pyroute2` runs the package's facade, which imports every netlink family, NDB (with
    sqlite3) and unittest.mock; the agent imports the submodules it needs by their full names, so
    the package is registered without running its `__init__`. httpx imports its own command line
    (rich, pygments) when it can; marking it absent makes httpx use its stub.
    """
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    if "pyroute2" in sys.modules:
        return
    spec = importlib.util.find_spec("pyroute2")
    if spec is not None and spec.submodule_search_locations is not None:
        sys.modules["pyroute2"] = importlib.util.module_from_spec(spec)


def use_system_malloc(argv: list[str]) -> None:
    """Run this process again with PYTHONMALLOC=malloc unless it already has it (same pid).

    Python's own allocator keeps every 1 MiB arena a single live object still holds; with glibc's
    malloc for Python objects, two arenas and `malloc_trim`, freed memory goes back to the kernel:
    about 4 MB of the agent's budget. The variable is read only at interpreter start.
    """
    if os.environ.get("PYTHONMALLOC"):
        return
    env = {**os.environ, "PYTHONMALLOC": "malloc"}
    os.execve(sys.executable, [sys.executable, "-m", "shoal.entry", *argv], env)  # noqa: S606


def release(freeze: bool = False) -> None:
    """Collect (and freeze what survived, when asked); hand freed heap pages back to the kernel."""
    gc.collect()
    if freeze:
        gc.freeze()
    found = libc()
    if found is not None:
        found.malloc_trim(0)


@dataclass
class TrimStep:
    """A loop step: `release()` after a reconcile, at most once every `every_s` seconds."""

    every_s: float = TRIM_EVERY_S
    last: float = float("-inf")

    def __call__(self, state: object) -> None:
        now = time.monotonic()
        if now - self.last < self.every_s:
            return
        release(freeze=self.last == float("-inf"))
        self.last = now

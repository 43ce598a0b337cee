"""One e2e session at a time on this machine, and no sandbox left behind by a killed one.

The sandbox's names (``sbx-*``) are fixed, so two sessions cannot share a machine: each takes
an exclusive lock for its whole run. While holding it, a session writes its pid to an owner
file; the next session that finds ``sbx-*`` namespaces whose recorded owner is dead reclaims
them with `shoal sandbox down` (a CI run killed mid-way must not fail every later run). A
sandbox with no recorded owner (someone's `make sandbox`) is waited for, then reported.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shoal.sandbox.net import sandbox_namespaces
from tests.e2e.helpers import SANDBOX

LOCK = Path(os.environ.get("SHOAL_E2E_LOCK", "/run/lock/shoal-e2e-sandbox.lock"))
OWNER = LOCK.with_suffix(".owner")
LOCK_WAIT_S = 45 * 60
FOREIGN_WAIT_S = 15 * 60


@contextmanager
def machine_lock() -> Iterator[None]:
    """Hold the machine's e2e lock (waiting for another session), reclaiming an orphaned sandbox."""
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with LOCK.open("a") as handle:
        _acquire(handle.fileno())
        try:
            _clear_leftovers()
            OWNER.write_text(str(os.getpid()))
            yield
        finally:
            OWNER.unlink(missing_ok=True)
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _acquire(fd: int) -> None:
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"another e2e session held {LOCK} for {LOCK_WAIT_S} s") from None
            time.sleep(2)


def _clear_leftovers() -> None:
    if sandbox_namespaces() and _owner_dead():
        _reclaim()
    deadline = time.monotonic() + FOREIGN_WAIT_S
    while sandbox_namespaces():
        if time.monotonic() > deadline:
            raise RuntimeError("a sandbox not made by an e2e session is up: run `shoal sandbox down`")
        time.sleep(5)


def _owner_dead() -> bool:
    try:
        pid = int(OWNER.read_text())
    except (OSError, ValueError):
        return False
    return not Path(f"/proc/{pid}").exists()


def _reclaim() -> None:
    print(f"e2e: reclaiming a sandbox left by a dead session: {', '.join(sandbox_namespaces())}")
    argv = [*SANDBOX, "down", "--dir", "/run/lock/shoal-e2e-orphan"]
    subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)

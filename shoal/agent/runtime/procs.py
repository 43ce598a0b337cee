"""Process helpers for the runtime: read a pid file, wait until a process is gone.

The container's init is reaped by its conmon and conmon by init, so "gone" means no such pid
or a zombie; used by stop (wait out the grace period) and delete (wait for conmon to finish).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

POLL_S = 0.02


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def alive(pid: int | None) -> bool:
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _gone_or_zombie(pid)


def alive_as(pid: int | None, name: str) -> bool:
    """Alive and still the program we started (a recycled pid is someone else)."""
    try:
        return alive(pid) and Path(f"/proc/{pid}/comm").read_text().strip() == name
    except (FileNotFoundError, ProcessLookupError):
        return False


def _gone_or_zombie(pid: int) -> bool:
    """A process that exited between the signal check and this read is gone, not alive."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def wait_gone(pid: int | None, wait_s: float) -> bool:
    """Polls until the process is gone (conmon reaps the container); True if it went in time."""
    if not pid or pid <= 0:
        return True
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(POLL_S)
    return not alive(pid)

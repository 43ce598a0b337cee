"""Whether a process runs, and waiting until it is gone. Shared by every layer (imports nothing).

Gone means no such pid, or a zombie: a zombie has exited and only waits for its parent to
collect its status. `reap` collects it when that parent is this process (a process it spawned);
for any other pid it does nothing.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

POLL_S = 0.02
GONE = ("Z", "X", "x")  # zombie, dead: states of a process that has exited


def alive(pid: int | None) -> bool:
    """Whether `pid` runs (a zombie does not; a pid of 0 or below is no process)."""
    if pid is None or pid <= 0:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return process_state(stat) not in GONE


def process_state(stat: str) -> str:
    """The state letter of a `/proc/<pid>/stat` line (after the name, which may hold ')')."""
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[0] if fields else ""


def reap(pid: int) -> bool:
    """Collect `pid`'s exit status if it is an exited child of this process; True if it was."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return done == pid


def wait_gone(pid: int | None, wait_s: float, poll_s: float = POLL_S) -> bool:
    """Poll until `pid` is gone, then reap it if it is a child of ours; True if it went in time."""
    deadline = time.monotonic() + wait_s
    while alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)
    if pid is not None and pid > 0:
        reap(pid)
    return True

"""Process helpers for the runtime: read a pid file, tell conmon from a recycled pid.

The container's init is reaped by its conmon and conmon by init, so "gone" means no such pid
or a zombie (`shoal.pids`); stop and delete wait for it with `shoal.pids.wait_gone`.
"""

from __future__ import annotations

from pathlib import Path

from shoal.pids import alive


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def alive_as(pid: int | None, name: str) -> bool:
    """Alive and still the program we started (a recycled pid is someone else)."""
    try:
        return alive(pid) and Path(f"/proc/{pid}/comm").read_text().strip() == name
    except (FileNotFoundError, ProcessLookupError):
        return False

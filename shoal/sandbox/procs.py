"""Finding and ending the sandbox's processes by namespace, never by name.

Used by `teardown.py`. A process belongs to the sandbox when its network namespace is an
``sbx-*`` namespace, or when it shares a private mount namespace with such a process (a node's
holder and everything entered through it). Reading /proc is the "command";
`select_pids` is the pure part.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from shoal.pids import alive, reap


@dataclass(frozen=True)
class ProcNs:
    """The namespace inodes of one process."""

    pid: int
    net: int
    mnt: int
    start: int = 0  # start time in clock ticks after boot: the oldest in a namespace holds it


def ns_inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def read_processes(proc: Path = Path("/proc")) -> list[ProcNs]:
    """Every process's network and mount namespace inodes (processes that vanish are skipped)."""
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        net, mnt = ns_inode(f"{entry}/ns/net"), ns_inode(f"{entry}/ns/mnt")
        if net is not None and mnt is not None:
            found.append(ProcNs(int(entry.name), net, mnt, _start_time(entry)))
    return found


def _start_time(entry: Path) -> int:
    try:
        return int((entry / "stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return 0


def select_pids(processes: Iterable[ProcNs], net_inodes: set[int], me: int) -> list[int]:
    """Pids in the given network namespaces or in a private mount namespace of one of them.

    A pid that `up` recorded is ended only through this test, so a pid reused by an unrelated
    process after a crash is never signalled.
    """
    procs = list(processes)
    in_net = {p.pid for p in procs if p.net in net_inodes}
    host_mnt = {p.mnt for p in procs if p.pid == me}
    mounts = {p.mnt for p in procs if p.pid in in_net} - host_mnt
    chosen = in_net | {p.pid for p in procs if p.mnt in mounts}
    return sorted(chosen - {me})


def mount_holders(processes: Iterable[ProcNs], net_inode: int, host_mnt: int) -> dict[int, int]:
    """The oldest process of each private mount namespace in a network namespace (a node's holder)."""
    oldest: dict[int, ProcNs] = {}
    for p in processes:
        if (
            p.net == net_inode
            and p.mnt != host_mnt
            and (p.mnt not in oldest or p.start < oldest[p.mnt].start)
        ):
            oldest[p.mnt] = p
    return {mnt: p.pid for mnt, p in oldest.items()}


def namespace_inodes(paths: Mapping[str, str]) -> dict[str, int]:
    """The inode of each named namespace file that still exists."""
    inodes = {name: ns_inode(path) for name, path in paths.items()}
    return {name: ino for name, ino in inodes.items() if ino is not None}


def end_processes(pids: Iterable[int], grace_s: float = 5.0) -> list[int]:
    """SIGTERM each pid, SIGKILL those left after ``grace_s``; returns the pids that were signalled."""
    signalled = [pid for pid in pids if _signal(pid, signal.SIGTERM)]
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(alive(pid) for pid in signalled):
        time.sleep(0.1)
    for pid in signalled:
        if alive(pid):
            _signal(pid, signal.SIGKILL)
    while any(alive(pid) for pid in signalled) and time.monotonic() < deadline + grace_s:
        time.sleep(0.05)
    for pid in signalled:
        reap(pid)  # those this process started itself
    return signalled


def _signal(pid: int, sig: int) -> bool:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True

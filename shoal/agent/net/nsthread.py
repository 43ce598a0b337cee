"""Run a function inside a network namespace, on a short-lived thread (agent/net).

setns(2) moves only the calling thread, so the agent process itself stays where it is while
libnftables, /proc/sys/net writes and DNS sockets are made in the node's namespace.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pyroute2 import netns  # the submodule (see agent.memory)

T = TypeVar("T")


def on_thread(fn: Callable[[], T], name: str) -> T:
    """fn() run on a thread of its own, which ends with it; its result or exception passed back.

    For what changes the calling thread's namespaces (setns, unshare) and must not change ours.
    """
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread below
            box["error"] = exc

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def in_netns(path: Path | None, fn: Callable[[], T]) -> T:
    """fn() run in the netns at `path` (None: right here), its result or exception passed back."""
    if path is None:
        return fn()

    def entered() -> T:
        netns.setns(str(path), flags=0)
        return fn()

    return on_thread(entered, f"netns:{path.name}")


def write_sysctl(path: Path | None, key: str, value: str) -> bool:
    """Set a net sysctl (e.g. net/ipv4/ip_forward) in a netns; True when it had to change."""
    target = Path("/proc/sys") / key

    def write() -> bool:
        if target.read_text().strip() == value:
            return False
        target.write_text(value)
        return True

    return in_netns(path, write)

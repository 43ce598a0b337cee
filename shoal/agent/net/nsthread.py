"""Run a function inside a network namespace, on a short-lived thread (agent/net).

setns(2) moves only the calling thread, so the agent process itself stays where it is while
libnftables, /proc/sys/net writes and DNS sockets are made in the node's namespace.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from pyroute2 import netns  # the submodule (see agent.memory)

T = TypeVar("T")


class Background(Generic[T]):
    """fn() run on a thread of its own from now on (or from `start()`, with start=False);
    `result()` joins it and gives back its value or raises its exception, `join()` only waits
    for it to end (at once when it never started)."""

    def __init__(self, fn: Callable[[], T], name: str, *, start: bool = True) -> None:
        self._box: dict[str, object] = {}
        self.thread = threading.Thread(target=self._run, args=(fn,), name=name, daemon=True)
        if start:
            self.thread.start()

    def start(self) -> None:
        self.thread.start()

    def _run(self, fn: Callable[[], T]) -> None:
        try:
            self._box["value"] = fn()
        except BaseException as exc:  # handed to the thread that asks for the result
            self._box["error"] = exc

    def join(self) -> None:
        if self.thread.ident is not None:
            self.thread.join()

    def result(self) -> T:
        self.join()
        if "error" in self._box:
            raise self._box["error"]  # type: ignore[misc]
        return self._box["value"]  # type: ignore[return-value]


def on_thread(fn: Callable[[], T], name: str) -> T:
    """fn() run on a thread of its own, which ends with it; its result or exception passed back.

    For what changes the calling thread's namespaces (setns, unshare) and must not change ours.
    """
    return Background(fn, name).result()


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

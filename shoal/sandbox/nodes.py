"""Sandbox nodes as processes: the holder of each node's namespaces, and what runs inside them.

Third step of `shoal sandbox up`, after `net.py` made the namespaces. Every node process enters
through its holder (``nsenter --target PID --net --mount --uts``), never ``ip netns exec``, which
remounts /sys and breaks runc.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from shoal.errors import ShoalError
from shoal.pids import alive
from shoal.sandbox.layout import NodePlan
from shoal.sandbox.net import netns_path


class NodeError(ShoalError):
    """A sandbox node or one of its processes failed."""


def node_dir(root: Path, name: str) -> Path:
    return root / "nodes" / name


def holder_argv(node: NodePlan, root: Path) -> list[str]:
    """The command that starts a node's holder inside its network namespace."""
    run = root / "run"
    holder = [sys.executable, "-m", "shoal.sandbox.holder", "--hostname", node.name]
    holder += [
        "--state-dir",
        str(node_dir(root, node.name)),
        "--resolv",
        str(run / f"{node.name}.resolv.conf"),
    ]
    holder += ["--ready", str(run / f"{node.name}.ready")]
    unshare = ["unshare", "--mount", "--uts", "--propagation", "private", "--"]
    return ["nsenter", f"--net={netns_path(node.netns)}", *unshare, *holder]


def start_holder(node: NodePlan, root: Path, timeout_s: float = 15.0) -> int:
    """Start the node's holder and wait until its namespaces are ready; returns its pid."""
    (root / "run").mkdir(parents=True, exist_ok=True)
    ready = root / "run" / f"{node.name}.ready"
    ready.unlink(missing_ok=True)
    log = root / "logs" / f"{node.name}-holder.log"
    pid = spawn(holder_argv(node, root), log)
    deadline = time.monotonic() + timeout_s
    while not ready.exists():
        if not alive(pid) or time.monotonic() > deadline:
            raise NodeError(f"node {node.name}: holder did not start: {last_lines(log)}")
        time.sleep(0.05)
    return pid


def enter(holder_pid: int) -> list[str]:
    """The argv prefix that runs a command inside a node (its net, mount and UTS namespaces)."""
    return ["nsenter", f"--target={holder_pid}", "--net", "--mount", "--uts", "--"]


def spawn(argv: Sequence[str], log: Path, env: dict[str, str] | None = None) -> int:
    """Start ``argv`` detached (own session, output to ``log``); returns its pid."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True, env=env
        )
    return proc.pid


def run_in(holder_pid: int, argv: Sequence[str], timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run a command inside a node and capture its output."""
    return subprocess.run(
        [*enter(holder_pid), *argv], capture_output=True, text=True, check=False, timeout=timeout_s
    )


def exec_in(holder_pid: int, argv: Sequence[str]) -> int:
    """Run a command inside a node with this terminal; returns its exit code."""
    if not alive(holder_pid):
        raise NodeError(f"the node's holder (pid {holder_pid}) is not running")
    return subprocess.run([*enter(holder_pid), *argv], check=False).returncode


def last_lines(log: Path, count: int = 5) -> str:
    """The last lines of a log, joined into one line for an error message."""
    try:
        lines = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(lines[-count:]) or "(empty log)"

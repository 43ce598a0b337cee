"""Short disturbances of a running sandbox, for e2e tests and benchmarks of failure semantics.

Each one undoes itself on the way out, even on failure: a paused server process is continued
(only the pid the sandbox recorded for it), an nftables table of packet drops is deleted, a cut
link is brought back up with its default route. Packet loss uses `numgen random` drops in the
node's own namespace (this kernel has no netem); the node's agent owns another table.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager

from shoal.sandbox import cluster
from shoal.sandbox.layout import INET_GATEWAY, LAN_GATEWAY
from shoal.sandbox.nodes import NodeError, run_in
from shoal.sandbox.state import SandboxState

LOSS_TABLE = "sbx_loss"
LINK = "eth0"


def pause_server(record: SandboxState, seconds: float, node: str | None = None) -> None:
    """SIGSTOP the server process for `seconds`, then SIGCONT it (always)."""
    pid = cluster.process(record, node or record.nodes[0].name, "server").pid
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        os.kill(pid, signal.SIGCONT)


def _nft(record: SandboxState, node: str, *argv: str) -> None:
    got = run_in(record.node(node).holder_pid, ["nft", *argv])
    if got.returncode != 0:
        raise NodeError(f"node {node}: nft {' '.join(argv)}: {got.stderr.strip()}")


def loss_rules(percent: int) -> list[list[str]]:
    """The nft commands of a table that drops `percent` % of the link's packets each way."""
    drop = ["numgen", "random", "mod", "100", "<", str(percent), "drop"]
    table = ["inet", LOSS_TABLE]

    def chain(name: str, hook: str) -> list[str]:
        spec = ["{", "type", "filter", "hook", hook, "priority", "-300", ";", "}"]
        return ["add", "chain", *table, name, *spec]

    return [
        ["add", "table", *table],
        chain("in", "prerouting"),
        chain("out", "postrouting"),
        ["add", "rule", *table, "in", "iifname", LINK, *drop],
        ["add", "rule", *table, "out", "oifname", LINK, *drop],
    ]


@contextmanager
def packet_loss(record: SandboxState, node: str, percent: int) -> Iterator[None]:
    """`percent` % of the node's link packets dropped, each way, while inside."""
    try:
        for argv in loss_rules(percent):
            _nft(record, node, *argv)
        yield
    finally:
        run_in(record.node(node).holder_pid, ["nft", "delete", "table", "inet", LOSS_TABLE])


def gateway(record: SandboxState, node: str) -> str:
    return LAN_GATEWAY if record.node(node).nat else INET_GATEWAY


@contextmanager
def link_cut(record: SandboxState, node: str) -> Iterator[None]:
    """The node's link down while inside (its processes keep running); back up with its route."""
    holder = record.node(node).holder_pid
    try:
        got = run_in(holder, ["ip", "link", "set", LINK, "down"])
        if got.returncode != 0:
            raise NodeError(f"node {node}: ip link set {LINK} down: {got.stderr.strip()}")
        yield
    finally:
        run_in(holder, ["ip", "link", "set", LINK, "up"])
        run_in(holder, ["ip", "route", "replace", "default", "via", gateway(record, node)])


def loss_table_present(record: SandboxState, node: str) -> bool:
    got = run_in(record.node(node).holder_pid, ["nft", "list", "table", "inet", LOSS_TABLE])
    return got.returncode == 0

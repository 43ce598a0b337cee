"""A container coming onto and leaving a node, as its firewall sees it, on real nftables.

A throwaway network namespace holds a node with 20 local containers (each publishing a port) on 5
networks, one of them with 199 members cluster-wide. Each run adds a 21st container (no published port:
its network membership, its bridge port and owned address are set elements) and removes it again
through the firewall reconciler. Same-run baseline: the whole-table replace, which anti-spoofing
rules written per container would need on every such change. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from shoal.agent.net.config import NetConfig
from shoal.agent.reconcilers.firewall import FirewallReconciler, Observed, plan
from shoal.model.container import ContainerSpec, PortMapping
from shoal.model.state import NetworkMembers, NodeState


def state(members: int) -> NodeState:
    local = [
        ContainerSpec(
            id=f"p-s{i}-1-1",
            image="x",
            ip=f"10.210.1.{i + 2}",
            project="p",
            networks=[f"p/n{i % 5}"],
            ports=[PortMapping(host_port=9000 + i, container_port=80)],
        )
        for i in range(20)
    ]
    remote = [f"10.210.{2 + k // 200}.{2 + k % 200}" for k in range(members - 4)]
    nets = [NetworkMembers(key="p/n0", members=[*remote, *(c.ip or "" for c in local[::5])])] + [
        NetworkMembers(key=f"p/n{j}", members=[c.ip or "" for c in local[j::5]]) for j in range(1, 5)
    ]
    return NodeState(node="n1", subnet="10.210.1.0/24", containers=local, networks=nets)


def with_newcomer(base: NodeState) -> NodeState:
    extra = ContainerSpec(id="p-new-1-1", image="x", ip="10.210.1.99", project="p", networks=["p/n1"])
    return base.model_copy(update={"containers": [*base.containers, extra]})


def measure(fw: FirewallReconciler, runs: int) -> dict[str, Any]:
    base = state(199)
    more = with_newcomer(base)
    fw.reconcile(base)
    changes, replaces = [], []
    for _ in range(runs):
        for wanted in (more, base):
            t = time.perf_counter()
            todo = fw.reconcile(wanted)
            changes.append((time.perf_counter() - t) * 1000)
            assert todo.commands is None and todo.elements, todo
    for _ in range(runs):
        for wanted in (more, base):
            t = time.perf_counter()
            fw.apply(plan(wanted, Observed(None, {}), fw.config))
            replaces.append((time.perf_counter() - t) * 1000)
    change, replace = statistics.median(changes), statistics.median(replaces)
    return {
        "runs": len(changes),
        "container_change_ms_median": round(change, 2),
        "full_replace_ms_median": round(replace, 2),
        "ratio_replace_over_change": round(replace / change, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=25)
    args = parser.parse_args()
    ns = f"shbench-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = NetConfig(
                node_netns=Path("/run/netns") / ns, state_dir=Path(tmp), management_ports=(7946,)
            )
            fw = FirewallReconciler(config)
            try:
                print(json.dumps(measure(fw, args.runs)))
            finally:
                fw.remove()
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=True)


if __name__ == "__main__":
    main()

"""Applying a network member change on a node's real nftables table. Target <= 50 ms.

A throwaway network namespace holds the `inet shoal` table of a node with 20 local containers on
5 networks; one network has 199 members cluster-wide. Each run adds its 200th member (then takes
it away again) through the firewall reconciler: observe, plan (element add/delete only, the
fingerprint unchanged) and apply. Same-run baseline: the full-ruleset replace the reconciler made
before sets (the whole table swapped in one transaction). Also checked: every rule's handle is
the same before and after the member changes (only that set changed). Prints JSON.
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
from shoal.model.state import NetworkMembers, NodeState, Peer

SUBNET = "10.210.1.0/24"


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
    big = [f"10.210.{2 + k // 200}.{2 + k % 200}" for k in range(members - 4)] + [
        f"10.210.1.{i + 2}" for i in range(0, 20, 5)
    ]
    nets = [NetworkMembers(key="p/n0", members=big)] + [
        NetworkMembers(key=f"p/n{j}", members=[f"10.210.1.{i + 2}" for i in range(j, 20, 5)])
        for j in range(1, 5)
    ]
    peers = [Peer(name=f"n{k}", public_key="k", subnet=f"10.210.{k}.0/24") for k in range(2, 12)]
    return NodeState(node="n1", subnet=SUBNET, peers=peers, containers=local, networks=nets)


def handles(ns: str) -> list[tuple[str, int]]:
    out = subprocess.run(
        ["ip", "netns", "exec", ns, "nft", "-j", "-a", "list", "table", "inet", "shoal"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [(i["rule"]["chain"], i["rule"]["handle"]) for i in json.loads(out)["nftables"] if "rule" in i]


def measure(fw: FirewallReconciler, ns: str, runs: int) -> dict[str, Any]:
    small, full = state(199), state(200)
    fw.reconcile(small)
    before = handles(ns)
    incremental, replace = [], []
    for _ in range(runs):
        for wanted in (full, small):
            t = time.perf_counter()
            todo = fw.reconcile(wanted)
            incremental.append((time.perf_counter() - t) * 1000)
            assert todo.commands is None and todo.elements and len(todo.elements) == 1, todo
    after = handles(ns)
    for _ in range(runs):
        for wanted in (full, small):
            t = time.perf_counter()
            todo = plan(wanted, Observed(None, {}), fw.config)  # forced: the whole table
            fw.apply(todo)
            replace.append((time.perf_counter() - t) * 1000)
    inc, rep = statistics.median(incremental), statistics.median(replace)
    return {
        "members": 200,
        "runs": len(incremental),
        "member_change_ms_median": round(inc, 2),
        "member_change_ms_p90": round(statistics.quantiles(incremental, n=10)[-1], 2),
        "full_replace_ms_median": round(rep, 2),
        "ratio_replace_over_change": round(rep / inc, 2),
        "rules": len(before),
        "rule_handles_unchanged": before == after,
        "target_ms": 50,
        "meets_target": inc <= 50,
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
                print(json.dumps(measure(fw, ns, args.runs), indent=1))
            finally:
                fw.remove()
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=True)


if __name__ == "__main__":
    main()

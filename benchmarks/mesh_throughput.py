"""Container-to-container TCP throughput across the WireGuard mesh against a direct veth, one run.

Two public nodes (namespaces, wireguard-go) each with one container netns attached by the network
reconciler. iperf3 runs container → container over the mesh (bridge → WireGuard → underlay →
WireGuard → bridge), then between the same two container namespaces over a veth pair joining them
directly. Prints JSON with both rates and their ratio. Run as root:
``.venv/bin/python benchmarks/mesh_throughput.py [--seconds 5]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.integration.net.topology import Topology, nsexec, run


def iperf(topology: Topology, server: Path, client: Path, address: str, seconds: int) -> float:
    """Bits per second received, client → server."""
    proc = topology.spawn(server, "iperf3", "-s", "-1", "-B", address)
    time.sleep(0.5)
    out = nsexec(client, "iperf3", "-J", "-c", address, "-t", str(seconds), timeout=seconds + 30)
    proc.wait(timeout=10)
    return float(json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"])


def direct_link(left: Path, right: Path) -> tuple[str, str]:
    run(
        "ip",
        "-n",
        left.name,
        "link",
        "add",
        "direct",
        "type",
        "veth",
        "peer",
        "name",
        "direct",
        "netns",
        right.name,
    )
    for ns, cidr in ((left, "198.51.100.1/30"), (right, "198.51.100.2/30")):
        run("ip", "-n", ns.name, "addr", "add", cidr, "dev", "direct")
        run("ip", "-n", ns.name, "link", "set", "direct", "up")
    return "198.51.100.1", "198.51.100.2"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    topology = Topology(["a", "b"], [])
    try:
        topology.build()
        topology.start({"a": ["web-1"], "b": ["web-2"]})
        left, right = topology.nodes["a"].containers["web-1"], topology.nodes["b"].containers["web-2"]
        target = topology.nodes["b"].network.ipam.allocations["web-2"]  # type: ignore[union-attr]
        nsexec(left, "ping", "-c", "2", "-W", "2", target)
        mesh = iperf(topology, right, left, target, args.seconds)
        _, direct_target = direct_link(left, right)
        direct = iperf(topology, right, left, direct_target, args.seconds)
        print(
            json.dumps(
                {
                    "benchmark": "mesh_throughput",
                    "seconds": args.seconds,
                    "mesh_mbit_s": round(mesh / 1e6, 1),
                    "direct_veth_mbit_s": round(direct / 1e6, 1),
                    "ratio_mesh_to_direct": round(mesh / direct, 4),
                    "path": "wireguard-go (userspace) on both nodes, MTU 1420",
                },
                indent=2,
            )
        )
    finally:
        topology.close()


if __name__ == "__main__":
    main()

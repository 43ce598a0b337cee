"""Time to reconcile the 50th WireGuard peer onto a node that has 49, and proof the 49 are untouched.

Two nodes (namespaces with wireguard-go) joined by a veth underlay, so one of the 49 peers is a
live tunnel with a real handshake; 48 more are made-up peers. Each trial adds a 50th peer with a
full WireguardReconciler.reconcile (observe over UAPI + netlink, plan, apply), timed, then checks
that the other 49 peers (endpoint, AllowedIPs, keepalive, latest handshake) are as before and the
change was one UAPI write; then removes it again. Prints JSON (target: median < 100 ms).
Run as root: ``.venv/bin/python benchmarks/wg_peers.py [--trials 9]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shoal.agent.sys.wireguard import WgPeer, load_or_create_key
from shoal.model.state import NodeState, Peer
from tests.integration.net.topology import Topology, nsexec


def fake_peers(count: int, keys_dir: Path) -> list[Peer]:
    peers = []
    for i in range(count):
        _, public = load_or_create_key(keys_dir / f"{i}.key")
        peers.append(
            Peer(
                name=f"f{i}",
                public_key=public,
                endpoint=f"192.0.2.{150 + i % 100}:51820",
                subnet=f"10.211.{i}.0/24",
            )
        )
    return peers


def snapshot(peers: dict[str, WgPeer], skip: str) -> dict[str, tuple[object, ...]]:
    return {
        k: (p.endpoint, p.allowed_ips, p.keepalive_s, p.last_handshake) for k, p in peers.items() if k != skip
    }


def trial(topology: Topology, base: NodeState, extra: Peer) -> dict[str, object]:
    node = topology.nodes["a"]
    assert node.wireguard is not None
    before = snapshot(node.wireguard.backend.get().peers, extra.public_key)
    writes = node.wireguard.backend.writes
    grown = base.model_copy(update={"peers": [*base.peers, extra]})
    began = time.perf_counter()
    node.wireguard.reconcile(grown)
    elapsed = time.perf_counter() - began
    added_with = node.wireguard.backend.writes - writes
    after = node.wireguard.backend.get().peers
    ok = snapshot(after, extra.public_key) == before and extra.public_key in after and len(after) == 50
    node.wireguard.reconcile(base)
    return {"ms": elapsed * 1000, "untouched": ok, "uapi_writes": added_with}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=9)
    args = parser.parse_args()
    topology = Topology(["a", "b"], [])
    keys = Path(tempfile.mkdtemp(prefix="shn-keys-"))
    try:
        topology.build()
        topology.start({})
        a, b = topology.nodes["a"], topology.nodes["b"]
        assert " 0% packet loss" in nsexec(a.netns, "ping", "-c", "2", "-W", "2", b.gateway).stdout
        base = topology.states["a"]
        fakes = fake_peers(48 + args.trials, keys)
        base = base.model_copy(update={"peers": [*base.peers, *fakes[:48]]})
        assert a.wireguard is not None
        a.wireguard.reconcile(base)
        handshake = a.wireguard.backend.get().peers[b.wireguard.public_key].last_handshake  # type: ignore[union-attr]
        results = [trial(topology, base, extra) for extra in fakes[48:]]
        live = a.wireguard.backend.get().peers[b.wireguard.public_key].last_handshake  # type: ignore[union-attr]
        times = [float(r["ms"]) for r in results]  # type: ignore[arg-type]
        print(
            json.dumps(
                {
                    "benchmark": "wg_peers",
                    "peers_before": 49,
                    "trials": len(results),
                    "median_ms": round(statistics.median(times), 2),
                    "max_ms": round(max(times), 2),
                    "target_ms": 100,
                    "others_untouched": all(r["untouched"] for r in results),
                    "uapi_writes_per_add": sorted({r["uapi_writes"] for r in results}),
                    "live_peer_handshake_unchanged": live == handshake,
                },
                indent=2,
            )
        )
    finally:
        topology.close()
        for key in keys.iterdir():
            key.unlink()
        keys.rmdir()


if __name__ == "__main__":
    main()

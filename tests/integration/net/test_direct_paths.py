"""Direct tunnels between NAT'd nodes on real wireguard-go: behind one NAT over the LAN, behind
two port-preserving NATs through the holes simultaneous keepalives punch, and behind NATs that
pick a random port per destination not at all (the relay carries on)."""

from __future__ import annotations

import time

from shoal.agent.render.relays import STALE_S
from tests.integration.net.topology import Topology, nsexec, running_cluster

SERVICES = {"c": ["api-1"], "d": ["api-2"]}


def _reaches(cluster: Topology) -> bool:
    target = cluster.nodes["d"].network.ipam.allocations["api-2"]  # type: ignore[union-attr]
    got = nsexec(cluster.nodes["c"].containers["api-1"], "ping", "-c", "2", "-i", "0.2", "-W", "1", target)
    return got.returncode == 0


def _ticks(cluster: Topology, seconds: float, until_direct: bool = False) -> None:
    """The agents' watch on c and d, once a second (after one pass with the learned endpoints)."""
    for name in ("c", "d"):
        cluster.nodes[name].wireguard.reconcile(cluster.states[name])  # type: ignore[union-attr]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not (until_direct and _direct(cluster)):
        for name in ("c", "d"):
            cluster.nodes[name].wireguard.watch(cluster.states[name])  # type: ignore[union-attr]
        time.sleep(1.0)


def _direct(cluster: Topology) -> bool:
    return all(cluster.nodes[n].wireguard.direct == {o} for n, o in (("c", "d"), ("d", "c")))  # type: ignore[union-attr]


def _paths(cluster: Topology) -> dict[str, tuple[str, str]]:
    c = cluster.nodes["c"].wireguard
    assert c is not None
    statuses = c.peer_status({}, cluster.states["c"].relayed)
    return {s.public_key: (s.path, s.via) for s in statuses}


def _learn(cluster: Topology) -> None:
    assert _reaches(cluster)  # through the relay: a has seen both NAT'd nodes' packets
    cluster.learn_endpoints()


def test_one_nat_the_lan_carries_them_with_every_relay_cut() -> None:
    with running_cluster(SERVICES) as cluster:
        _learn(cluster)
        assert [p.endpoint for p in cluster.states["c"].relayed] == ["203.0.113.5:51820"]
        _ticks(cluster, 15, until_direct=True)
        assert _direct(cluster)
        d_key = cluster.nodes["d"].wireguard.public_key  # type: ignore[union-attr]
        assert _paths(cluster)[d_key] == ("direct", "")
        for relay in ("a", "b"):
            nsexec(cluster.nodes[relay].netns, "ip", "link", "set", "eth0", "down")
        assert _reaches(cluster)


def test_two_port_preserving_nats_are_punched_through() -> None:
    with running_cluster(SERVICES, separate_nats=True) as cluster:
        _learn(cluster)
        assert [p.endpoint for p in cluster.states["c"].relayed] == ["192.0.2.253:51820"]
        _ticks(cluster, 20, until_direct=True)
        assert _direct(cluster)
        for relay in ("a", "b"):
            nsexec(cluster.nodes[relay].netns, "ip", "link", "set", "eth0", "down")
        assert _reaches(cluster)


def test_nats_with_random_ports_leave_them_on_the_relay() -> None:
    with running_cluster(SERVICES, separate_nats=True, nat_random=True) as cluster:
        _learn(cluster)
        assert cluster.states["c"].relayed[0].endpoint is not None  # tried...
        _ticks(cluster, STALE_S + 5)
        assert cluster.nodes["c"].wireguard.direct == set()  # type: ignore[union-attr]
        d_key = cluster.nodes["d"].wireguard.public_key  # type: ignore[union-attr]
        assert _paths(cluster)[d_key] == ("relayed", "a")
        assert _reaches(cluster)  # ...and the relay carries on

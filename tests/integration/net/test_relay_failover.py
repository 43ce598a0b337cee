"""Relay failover on real wireguard-go tunnels: c and d (behind NAT) talk through a; a goes dark.

c and d notice a's keepalives stop, move d's (c's) subnet onto b's peer by themselves (no new
state from any server) and traffic flows again; when a comes back they stay on b (no flap), and
a watch tick that changes nothing writes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from shoal.agent.render.relays import STALE_S
from tests.integration.net.topology import Topology, nsexec, running_cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[Topology]:
    with running_cluster({"c": ["api-1"], "d": ["api-2"]}) as topology:
        yield topology


def _ip(cluster: Topology, node: str, cid: str) -> str:
    network = cluster.nodes[node].network
    assert network is not None
    return network.ipam.allocations[cid]


def _reaches(cluster: Topology) -> bool:
    source = cluster.nodes["c"].containers["api-1"]
    got = nsexec(source, "ping", "-c", "1", "-W", "1", _ip(cluster, "d", "api-2"))
    return got.returncode == 0


def _watch(cluster: Topology, seconds: float) -> None:
    """The agents' ticks on c and d for `seconds` (once a second, as the agent loop does)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for name in ("c", "d"):
            wireguard = cluster.nodes[name].wireguard
            assert wireguard is not None
            wireguard.watch(cluster.states[name])
        time.sleep(1.0)


def _relays(cluster: Topology) -> set[str]:
    return {cluster.nodes[n].wireguard.relay for n in ("c", "d")}  # type: ignore[union-attr]


def _link(cluster: Topology, node: str, state: str) -> None:
    assert nsexec(cluster.nodes[node].netns, "ip", "link", "set", "eth0", state).returncode == 0


def test_natted_nodes_move_to_the_next_relay_and_stay_there(cluster: Topology) -> None:
    assert _reaches(cluster)
    assert cluster.states["c"].relays == ["a", "b"]
    _watch(cluster, 1.5)
    assert _relays(cluster) == {"a"}
    _link(cluster, "a", "down")
    try:
        _watch(cluster, STALE_S + 3)
        assert _relays(cluster) == {"b"}
        assert _reaches(cluster)
        _link(cluster, "a", "up")
        _watch(cluster, STALE_S + 3)
        assert _relays(cluster) == {"b"}  # a is back and alive: no flap back
        assert _reaches(cluster)
    finally:
        _link(cluster, "a", "up")


def test_a_tick_and_a_pass_that_change_nothing_write_nothing(cluster: Topology) -> None:
    c = cluster.nodes["c"]
    assert c.wireguard is not None
    before = c.wireguard.writes
    assert not c.wireguard.watch(cluster.states["c"])
    assert c.wireguard.reconcile(cluster.states["c"]).empty
    assert c.wireguard.writes == before


def test_the_status_says_which_peers_go_through_which_relay(cluster: Topology) -> None:
    c = cluster.nodes["c"]
    assert c.wireguard is not None
    statuses = c.wireguard.peer_status({}, cluster.states["c"].relayed)
    relayed = [(s.name, s.path, s.via) for s in statuses if s.path == "relayed"]
    assert relayed == [("d", "relayed", c.wireguard.relay)]
    assert all(s.path == "direct" and not s.via for s in statuses if s.name != "d")

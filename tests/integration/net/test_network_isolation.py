"""Compose networks enforced by real nftables on wireguard-go nodes (a, b public; c, d NAT'd).

Project p: `front-1` on front; `api-1` on front and back; `db-1` on back (internal: true);
`worker-1` on back behind NAT (reaches db through the relay). Project q: `intruder-1`, on its own
default network, and `shared-1`/`shared-2` on the external network `shared` from p and q.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.agent.render.nft import set_name
from tests.integration.net.topology import Topology, nsexec, running_cluster

SERVICES = {
    "a": ["front-1", "api-1"],
    "b": ["db-1", "shared-1"],
    "c": ["worker-1", "intruder-1"],
    "d": ["shared-2"],
}
NETWORKS = {
    "front-1": ["p/front"],
    "api-1": ["p/back", "p/front"],
    "db-1": ["p/back"],
    "worker-1": ["p/back"],
    "intruder-1": ["q/default"],
    "shared-1": ["/shared", "p/default"],
    "shared-2": ["/shared", "q/default"],
}
WORLD = "192.0.2.100"  # the "internet" namespace of the topology


@pytest.fixture(scope="module")
def cluster() -> Iterator[Topology]:
    with running_cluster(SERVICES, NETWORKS) as topology:
        for node in topology.nodes.values():  # db is on an internal network only
            assert node.firewall is not None
        _internal(topology, "p/back")
        yield topology


def _internal(cluster: Topology, key: str) -> None:
    for state in cluster.states.values():
        for net in state.networks:
            net.internal = net.internal or net.key == key
    cluster.reconcile_all()


def _ns(cluster: Topology, cid: str) -> Path:
    return next(n.containers[cid] for n in cluster.nodes.values() if cid in n.containers)


def _ip(cluster: Topology, cid: str) -> str:
    for node in cluster.nodes.values():
        assert node.network is not None
        if cid in node.network.ipam.allocations:
            return node.network.ipam.allocations[cid]
    raise KeyError(cid)


def _reaches(cluster: Topology, src: str, dst: str) -> bool:
    out = nsexec(_ns(cluster, src), "ping", "-c", "2", "-i", "0.2", "-W", "1", _ip(cluster, dst)).stdout
    return " 0% packet loss" in out


def test_same_network_reaches_across_nodes_and_on_one_node(cluster: Topology) -> None:
    assert _reaches(cluster, "api-1", "db-1")  # a -> b over the tunnel, on back
    assert _reaches(cluster, "front-1", "api-1")  # bridge -> bridge on a, on front
    assert _reaches(cluster, "worker-1", "db-1")  # NAT'd c -> relay a -> b, on back


def test_different_networks_and_other_projects_do_not_reach(cluster: Topology) -> None:
    assert not _reaches(cluster, "front-1", "db-1")  # front only
    assert not _reaches(cluster, "intruder-1", "db-1")  # another project, through the relay
    assert not _reaches(cluster, "intruder-1", "worker-1")  # another project, same node
    assert not _reaches(cluster, "db-1", "front-1")


def test_an_external_network_joins_two_projects(cluster: Topology) -> None:
    assert _reaches(cluster, "shared-1", "shared-2")  # b -> NAT'd d, p and q on /shared
    assert not _reaches(cluster, "shared-2", "api-1")


def test_internal_network_has_no_route_out_the_others_do(cluster: Topology) -> None:
    assert not _reaches_world(cluster, "db-1")
    assert _reaches_world(cluster, "shared-1")


def _reaches_world(cluster: Topology, cid: str) -> bool:
    return (
        " 0% packet loss"
        in nsexec(_ns(cluster, cid), "ping", "-c", "2", "-i", "0.2", "-W", "1", WORLD).stdout
    )


def test_the_nodes_themselves_reach_any_container(cluster: Topology) -> None:
    """The ingress path: Caddy on a node proxies to replicas over the overlay."""
    a = cluster.nodes["a"]
    out = nsexec(a.netns, "ping", "-c", "2", "-i", "0.2", "-W", "1", _ip(cluster, "db-1")).stdout
    assert " 0% packet loss" in out


def _listing(cluster: Topology, node: str) -> dict[str, object]:
    out = nsexec(cluster.nodes[node].netns, "nft", "-j", "-a", "list", "table", "inet", "shoal").stdout
    return json.loads(out)  # type: ignore[no-any-return]


def _handles(listing: dict[str, object]) -> list[tuple[str, int]]:
    items = listing["nftables"]
    assert isinstance(items, list)
    return [(i["rule"]["chain"], i["rule"]["handle"]) for i in items if "rule" in i]


def test_a_new_member_is_one_element_add_and_the_rules_stay(cluster: Topology) -> None:
    assert not _reaches(cluster, "intruder-1", "db-1")
    b = cluster.nodes["b"]
    assert b.firewall is not None
    before = _handles(_listing(cluster, "b"))
    transactions = b.firewall.nft.transactions
    cluster.networks["intruder-1"] = ["p/back", "q/default"]
    states = cluster.desired(SERVICES)
    for name, state in states.items():
        for net in state.networks:
            net.internal = net.key == "p/back"
        cluster.states[name] = state
    assert b.firewall.observe().fingerprint is not None
    todo = b.firewall.reconcile(cluster.states["b"], b.network.ipam.allocations if b.network else {})
    assert todo.commands is None and todo.elements is not None
    assert [next(iter(c)) for c in todo.elements] == ["add"]
    assert todo.elements[0]["add"]["element"]["name"] == set_name("p/back")
    assert b.firewall.nft.transactions == transactions + 1
    assert _handles(_listing(cluster, "b")) == before
    cluster.reconcile_all()
    assert _reaches(cluster, "intruder-1", "db-1")
    cluster.networks["intruder-1"] = ["q/default"]
    cluster.states = cluster.desired(SERVICES)
    _internal(cluster, "p/back")
    assert not _reaches(cluster, "intruder-1", "db-1")

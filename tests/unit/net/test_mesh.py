"""shoal.control.mesh: peers, AllowedIPs through the relay, keepalive, relay choice."""

from __future__ import annotations

from shoal.control.mesh import (
    KEEPALIVE_S,
    RELAY_KEEPALIVE_S,
    MeshNode,
    NodeMesh,
    may_direct,
    may_relay,
    plan_mesh,
    relay_allowed,
)


def mesh(nodes: list[MeshNode]) -> dict[str, NodeMesh]:
    """Each node's part of the mesh, by name (as the server hands them out, one node at a time)."""
    planned = plan_mesh(nodes)
    return {name: planned.of(name) for name in planned.nodes}


NODES = [
    MeshNode("d-home", "10.210.4.0/24", "kd", None),
    MeshNode("b-cloud", "10.210.2.0/24", "kb", "198.51.100.2:51820"),
    MeshNode("a-cloud", "10.210.1.0/24", "ka", "198.51.100.1:51820"),
    MeshNode("c-home", "10.210.3.0/24", "kc", None),
]


def test_public_nodes_peer_with_everyone_relays_keep_natted_ones_alive() -> None:
    peers = {p.name: p for p in mesh(NODES)["b-cloud"].peers}
    assert sorted(peers) == ["a-cloud", "c-home", "d-home"]
    assert peers["c-home"].endpoint is None and peers["c-home"].allowed_ips == ["10.210.3.0/24"]
    assert peers["a-cloud"].keepalive_s == 0
    assert peers["c-home"].keepalive_s == peers["d-home"].keepalive_s == RELAY_KEEPALIVE_S


def test_public_node_that_may_not_relay_sends_no_keepalive_and_is_no_candidate() -> None:
    nodes = [*NODES[:1], MeshNode("b-cloud", "10.210.2.0/24", "kb", "198.51.100.2:51820", False), *NODES[2:]]
    result = mesh(nodes)
    assert not result["b-cloud"].relay
    assert all(p.keepalive_s == 0 for p in result["b-cloud"].peers)
    assert result["c-home"].relays == ["a-cloud"]


def test_admin_label_forbids_relaying() -> None:
    assert may_relay({}) and may_relay({"shoal.relay": "true"})
    assert not may_relay({"shoal.relay": "false"}) and not may_relay({"shoal.relay": "no"})


def test_only_a_node_an_admin_marked_relays_and_the_label_still_forbids_it() -> None:
    assert relay_allowed(True, {}) and relay_allowed(True, {"shoal.relay": "true"})
    assert not relay_allowed(False, {}) and not relay_allowed(False, {"shoal.relay": "true"})
    assert not relay_allowed(True, {"shoal.relay": "false"})


def test_natted_node_reaches_the_other_natted_one_through_the_relay() -> None:
    result = mesh(NODES)
    peers = {p.name: p for p in result["c-home"].peers}
    assert sorted(peers) == ["a-cloud", "b-cloud"]  # no direct peer for d-home
    assert peers["a-cloud"].allowed_ips == ["10.210.1.0/24", "10.210.4.0/24"]
    assert peers["b-cloud"].allowed_ips == ["10.210.2.0/24"]
    assert all(p.keepalive_s == KEEPALIVE_S for p in peers.values())
    assert result["a-cloud"].relay and result["b-cloud"].relay and not result["c-home"].relay


def test_natted_node_gets_ranked_relays_and_the_nodes_it_reaches_through_them() -> None:
    part = mesh(NODES)["c-home"]
    assert part.relays == ["a-cloud", "b-cloud"]
    assert [(p.name, p.subnet, p.public_key, p.endpoint) for p in part.relayed] == [
        ("d-home", "10.210.4.0/24", "kd", None)
    ]
    assert mesh(NODES)["a-cloud"].relays == [] and mesh(NODES)["a-cloud"].relayed == []


def test_relay_choice_is_deterministic_whatever_the_order() -> None:
    assert mesh(NODES) == mesh(list(reversed(NODES)))


def test_one_natted_node_needs_no_relay() -> None:
    result = mesh([*NODES[1:3], NODES[3]])
    assert not any(m.relay or m.relays or m.relayed for m in result.values())
    assert [p.allowed_ips for p in result["c-home"].peers] == [["10.210.1.0/24"], ["10.210.2.0/24"]]


def test_only_natted_nodes_get_no_peers_for_each_other() -> None:
    result = mesh([NODES[0], NODES[3]])
    assert result["c-home"].peers == [] and result["d-home"].peers == []


def test_node_without_key_is_left_out() -> None:
    nodes = [*NODES, MeshNode("e-new", "10.210.5.0/24", "", "198.51.100.5:51820")]
    assert "e-new" not in {p.name for p in mesh(nodes)["a-cloud"].peers}


def test_a_stranger_has_no_part_of_the_mesh() -> None:
    assert plan_mesh(NODES).of("not-a-member") == NodeMesh()


def home(name: str, observed: str | None, lan: str | None) -> MeshNode:
    return MeshNode(name, f"10.210.{len(name)}.0/24", f"k{name}", None, observed=observed, lan=lan)


def test_natted_nodes_behind_one_nat_try_each_other_on_the_lan() -> None:
    nodes = [*NODES[1:3], home("c", "198.51.100.9:40001", "192.168.1.3:51820")]
    nodes.append(home("dd", "198.51.100.9:40002", "192.168.1.4:51820"))
    relayed = mesh(nodes)["c"].relayed
    assert [(p.name, p.endpoint, p.keepalive_s) for p in relayed] == [
        ("dd", "192.168.1.4:51820", RELAY_KEEPALIVE_S)
    ]


def test_natted_nodes_behind_two_nats_try_the_observed_endpoints() -> None:
    nodes = [*NODES[1:3], home("c", "198.51.100.9:40001", "192.168.1.3:51820")]
    nodes.append(home("dd", "198.51.100.7:40002", "192.168.1.4:51820"))
    assert [p.endpoint for p in mesh(nodes)["c"].relayed] == ["198.51.100.7:40002"]
    nodes[-1] = home("dd", None, "192.168.1.4:51820")  # never seen by a relay: nothing to try
    assert [p.endpoint for p in mesh(nodes)["c"].relayed] == [None]


def test_an_admin_may_keep_a_natted_node_on_relays() -> None:
    nodes = [*NODES[1:3], home("c", "198.51.100.9:40001", "192.168.1.3:51820")]
    nodes.append(MeshNode("dd", "10.210.2.0/24", "kdd", None, observed="198.51.100.9:1", may_direct=False))
    assert [p.endpoint for p in mesh(nodes)["c"].relayed] == [None]
    assert not may_direct({"shoal.direct": "false"}) and may_direct({})


def test_the_relay_most_natted_nodes_use_is_ranked_first() -> None:
    assert plan_mesh(NODES, {"b-cloud": 2}).of("c-home").relays == ["b-cloud", "a-cloud"]
    assert plan_mesh(NODES, {"b-cloud": 1, "a-cloud": 1}).of("c-home").relays == ["a-cloud", "b-cloud"]

"""The sandbox's plan: names, addresses, NAT placement, ingress, the router's ruleset."""

from __future__ import annotations

import pytest

from shoal.errors import ConfigError
from shoal.sandbox.layout import overlapping, plan_layout, router_ruleset


def test_four_nodes_two_behind_nat() -> None:
    layout = plan_layout(4, 2)
    assert [n.name for n in layout.nodes] == ["n1", "n2", "n3", "n4"]
    assert [n.netns for n in layout.nodes] == ["sbx-n1", "sbx-n2", "sbx-n3", "sbx-n4"]
    assert [n.address for n in layout.nodes] == [
        "203.0.113.11",
        "203.0.113.12",
        "198.51.100.13",
        "198.51.100.14",
    ]
    assert [n.nat for n in layout.nodes] == [False, False, True, True]
    assert [n.ingress for n in layout.nodes] == [False, True, False, False]
    assert layout.has_router
    assert layout.server_url == "https://203.0.113.11:8443"
    assert layout.registry == "203.0.113.2:5000"


def test_public_nodes_have_endpoints_nat_nodes_route_through_router() -> None:
    public, nat = plan_layout(2, 1).nodes
    assert (public.endpoint, public.gateway) == ("203.0.113.11:51820", "203.0.113.1")
    assert (nat.endpoint, nat.gateway) == (None, "198.51.100.1")


def test_single_node_runs_ingress_and_needs_no_router() -> None:
    layout = plan_layout(1, 0)
    assert layout.nodes[0].ingress
    assert not layout.has_router


@pytest.mark.parametrize(("nodes", "nat", "word"), [(0, 0, "--nodes"), (10, 0, "--nodes"), (3, 3, "--nat")])
def test_impossible_counts_are_one_line_errors(nodes: int, nat: int, word: str) -> None:
    with pytest.raises(ConfigError, match=word):
        plan_layout(nodes, nat)


def test_unknown_node_name() -> None:
    with pytest.raises(ConfigError, match="n9"):
        plan_layout(2, 0).node("n9")


def test_router_masquerades_the_lan_out_of_the_wan_only() -> None:
    commands = router_ruleset()["nftables"]
    rule = commands[2]["add"]["rule"]
    assert commands[1]["add"]["chain"]["hook"] == "postrouting"
    assert rule["expr"][0]["match"]["right"] == {"prefix": {"addr": "198.51.100.0", "len": 24}}
    assert rule["expr"][1]["match"]["right"] == "wan0"
    assert rule["expr"][2] == {"masquerade": None}


def test_overlapping_host_addresses() -> None:
    host = ["127.0.0.1/8", "192.0.2.2/24", "fd00::2/64", "203.0.113.9/24", "198.51.0.1/16"]
    assert overlapping(host) == ["203.0.113.0/24", "198.51.0.0/16"]
    assert overlapping(["192.0.2.2/24"]) == []


def test_mesh_is_ready_when_every_nat_node_shook_hands_with_every_public_node() -> None:
    from shoal.sandbox.cluster import mesh_ready

    def node(name: str, *peers: str, state: str = "ready") -> dict[str, object]:
        return {"name": name, "state": state, "peers": [{"name": p, "latest_handshake": 1.0} for p in peers]}

    public = {"n1", "n2"}
    assert mesh_ready([node("n1", "n3"), node("n2", "n3"), node("n3", "n1", "n2")], public)
    assert not mesh_ready([node("n1", "n3"), node("n2"), node("n3", "n1")], public)
    assert not mesh_ready([node("n1"), node("n2", state="down")], public)
    assert mesh_ready([node("n1")], {"n1"})

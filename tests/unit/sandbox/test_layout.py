"""The sandbox's plan: names, addresses, NAT placement, ingress, the router's ruleset."""

from __future__ import annotations

import ipaddress

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


def test_shared_nat_mode_is_the_default_one_router_for_every_natted_node() -> None:
    layout = plan_layout(4, 2)
    assert layout.nat_mode == "shared"
    (router,) = layout.routers
    assert (router.netns, router.wan_ip, router.lan_cidr, router.random_ports) == (
        "sbx-router",
        "203.0.113.254",
        "198.51.100.0/24",
        False,
    )
    assert [n.prefixlen for n in layout.nodes] == [24, 24, 24, 24]
    assert plan_layout(2, 0).routers == ()


def test_symmetric_nat_mode_puts_each_natted_node_behind_its_own_router() -> None:
    layout = plan_layout(4, 2, "symmetric")
    n3, n4 = layout.nodes[2:]
    assert [n.address for n in layout.nodes] == [
        "203.0.113.11",
        "203.0.113.12",
        "198.51.100.58",
        "198.51.100.74",
    ]
    assert layout.routers == (n3.router, n4.router)
    assert [(r.netns, r.wan_peer, r.wan_ip) for r in layout.routers] == [
        ("sbx-router-n3", "sbx-rtr-n3", "203.0.113.243"),
        ("sbx-router-n4", "sbx-rtr-n4", "203.0.113.244"),
    ]
    assert [(r.lan_cidr, r.lan_gateway) for r in layout.routers] == [
        ("198.51.100.48/28", "198.51.100.49"),
        ("198.51.100.64/28", "198.51.100.65"),
    ]
    assert (n3.gateway, n3.prefixlen, n3.endpoint, n3.peer_if) == ("198.51.100.49", 28, None, "n3")
    assert [n.ingress for n in layout.nodes] == [False, True, False, False]


def test_symmetric_routers_fit_the_sandbox_ranges_and_names() -> None:
    """Every router netns is swept by `down` (sbx-*), its veth name fits IFNAMSIZ, its WAN address
    clashes with no node, gateway or the host, and each node sits inside its own router's LAN."""
    layout = plan_layout(9, 8, "symmetric")
    wans = [r.wan_ip for r in layout.routers]
    taken = {n.address for n in layout.nodes} | {"203.0.113.1", "203.0.113.2", "203.0.113.250"}
    assert len(set(wans)) == 8 and not set(wans) & taken
    for node in layout.nodes[1:]:
        assert node.router is not None and node.router.netns.startswith("sbx-")
        assert len(node.router.wan_peer) <= 15
        net = ipaddress.ip_network(node.router.lan_cidr)
        assert ipaddress.ip_address(node.address) in net
        assert net.subnet_of(ipaddress.ip_network("198.51.100.0/24"))
        assert ipaddress.ip_address(node.gateway) in net


def test_unknown_nat_mode_is_a_one_line_error() -> None:
    with pytest.raises(ConfigError, match="--nat-mode"):
        plan_layout(3, 1, "cone")


def test_symmetric_router_masquerades_its_own_lan_with_fully_random_ports() -> None:
    router = plan_layout(3, 1, "symmetric").nodes[2].router
    assert router is not None
    rule = router_ruleset(router)["nftables"][2]["add"]["rule"]
    assert rule["expr"][0]["match"]["right"] == {"prefix": {"addr": "198.51.100.48", "len": 28}}
    assert rule["expr"][2] == {"masquerade": {"flags": ["fully-random"]}}

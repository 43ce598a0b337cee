"""Netlink dump parsers (captured from a real node netns) and the bridge plan."""

from __future__ import annotations

import json
from pathlib import Path

from shoal.agent.reconcilers.network import NetObserved, plan
from shoal.agent.sys.netlink import parse_address, parse_link, parse_route
from shoal.model.container import ContainerSpec
from shoal.model.state import NodeState

DATA = Path(__file__).parent / "data"
LINKS = {link.name: link for link in map(parse_link, json.loads((DATA / "netlink_links.json").read_text()))}
ADDRS = [parse_address(d) for d in json.loads((DATA / "netlink_addrs.json").read_text())]
ROUTES = [parse_route(d) for d in json.loads((DATA / "netlink_routes.json").read_text())]
STATE = NodeState(node="a", subnet="10.210.1.0/24", containers=[ContainerSpec(id="web-1", image="x")])


def test_parse_links() -> None:
    bridge = LINKS["shoal0"]
    assert bridge.kind == "bridge" and bridge.mtu == 1420 and bridge.up
    veths = [link for link in LINKS.values() if link.kind == "veth" and link.name.startswith("shv")]
    assert len(veths) == 1 and veths[0].master == bridge.index
    assert any(link.kind == "tun" and link.mtu == 1420 for link in LINKS.values())


def test_parse_addresses_and_routes() -> None:
    assert "10.210.1.1/24" in ADDRS and "192.0.2.1/24" in ADDRS
    cluster = next(r for r in ROUTES if r.dst == "10.210.0.0/16")
    assert cluster.prefsrc == "10.210.1.1" and cluster.gateway is None
    assert any(r.dst == "10.210.1.0/24" and r.oif == LINKS["shoal0"].index for r in ROUTES)


def test_captured_node_needs_nothing() -> None:
    observed = NetObserved(LINKS["shoal0"], tuple(ADDRS), True, ("web-1",))
    assert plan(STATE, observed, 1420).empty


def test_fresh_node_gets_bridge_address_and_forwarding() -> None:
    todo = plan(STATE, NetObserved(None, (), False, ()), 1420)
    assert todo.create_bridge and todo.set_bridge == {"mtu": 1420, "state": "up"}
    assert todo.add_addresses == ("10.210.1.1/24",) and todo.enable_forwarding and not todo.empty


def test_containers_gone_from_the_state_are_detached() -> None:
    observed = NetObserved(LINKS["shoal0"], tuple(ADDRS), True, ("old-1", "web-1"))
    assert plan(STATE, observed, 1420).detach == ("old-1",)


def test_a_gone_container_keeps_its_network_while_a_process_lives_in_it() -> None:
    observed = NetObserved(LINKS["shoal0"], tuple(ADDRS), True, ("old-1", "web-1"), in_use=("old-1",))
    assert plan(STATE, observed, 1420).empty

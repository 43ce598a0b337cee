"""Compose networks in the ruleset: one set per network, a rule per set, members as elements.

The golden file is the whole ruleset for a node with two projects, an external and an internal
network (regenerate with SHOAL_REGOLD=1 and read the diff).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from shoal.agent.net.config import NetConfig
from shoal.agent.reconcilers.firewall import Observed, plan, wanted_ruleset
from shoal.agent.render.nft import ISOLATED, forward_rules, node_addresses, set_name
from shoal.agent.sys.nft import parse_elements
from shoal.model.container import ContainerSpec, PortMapping
from shoal.model.state import NetworkMembers, NodeState, Peer

GOLDEN = Path(__file__).parents[1] / "data" / "net" / "nft_ruleset_networks.json"
CONFIG = NetConfig(bridge="shoal0", wg_interface="wg0", management_ports=(7946, 8443))


def _c(
    cid: str, ip: str, project: str, networks: list[str], internal: list[str] | None = None
) -> ContainerSpec:
    return ContainerSpec(
        id=cid, image="x", ip=ip, project=project, networks=networks, internal_networks=internal or []
    )


STATE = NodeState(
    node="a",
    subnet="10.210.1.0/24",
    peers=[Peer(name="b", public_key="k", subnet="10.210.2.0/24")],
    containers=[
        _c("a-web-1-1", "10.210.1.2", "a", ["a/front"]).model_copy(
            update={"ports": [PortMapping(host_port=8080, container_port=80)]}
        ),
        _c("a-api-1-1", "10.210.1.3", "a", ["a/back", "a/front"]),
        _c("a-db-1-1", "10.210.1.4", "a", ["a/back"], ["a/back"]),
        _c("b-app-1-1", "10.210.1.5", "b", ["/shared", "b/default"]),
    ],
    networks=[
        NetworkMembers(key="a/back", internal=True, members=["10.210.1.3", "10.210.1.4", "10.210.2.7"]),
        NetworkMembers(key="a/front", members=["10.210.1.2", "10.210.1.3"]),
        NetworkMembers(key="/shared", members=["10.210.1.5", "10.210.2.9"]),
    ],
)


def _render(state: NodeState):  # type: ignore[no-untyped-def]
    return wanted_ruleset(state, CONFIG)


def test_whole_ruleset_matches_the_golden_file() -> None:
    got = json.dumps({"nftables": _render(STATE).commands}, indent=1, sort_keys=True) + "\n"
    if os.environ.get("SHOAL_REGOLD"):
        GOLDEN.write_text(got)
    assert got == GOLDEN.read_text()


def test_one_set_per_network_with_members_cluster_wide_and_local_ones() -> None:
    elements = _render(STATE).elements
    assert elements[set_name("a/back")] == ["10.210.1.3", "10.210.1.4", "10.210.2.7"]
    assert elements[set_name("a/front")] == ["10.210.1.2", "10.210.1.3"]
    assert elements[set_name("b/default")] == ["10.210.1.5"]  # the server did not list it: local
    assert elements[ISOLATED] == ["10.210.1.4"]  # db is on internal networks only; api is not


def test_container_to_container_only_within_one_set() -> None:
    forward = [
        c["add"]["rule"]["expr"]
        for c in _render(STATE).commands
        if c["add"].get("rule", {}).get("chain") == "forward"
    ]
    by_set = [r for r in forward if r[0]["match"]["right"] == f"@{set_name('a/back')}"]
    assert by_set == [
        [
            {
                "match": {
                    "op": "==",
                    "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                    "right": f"@{set_name('a/back')}",
                }
            },
            {
                "match": {
                    "op": "==",
                    "left": {"payload": {"protocol": "ip", "field": "daddr"}},
                    "right": f"@{set_name('a/back')}",
                }
            },
            {"accept": None},
        ]
    ]
    text = json.dumps(forward)
    # nothing accepts bridge -> bridge or bridge <-> tunnel by interface alone any more
    assert [
        r
        for r in forward
        if len(r) == 3
        and r[-1] == {"accept": None}
        and "oifname" in json.dumps(r[1])
        and "wg0" not in json.dumps(r[1])
        and "shoal0" in json.dumps(r[0])
    ] == []
    assert '"right": {"set": ["10.210.1.1", "10.210.2.1"]}' in text  # nodes (ingress) reach containers


def test_a_member_change_is_an_element_add_and_delete_not_a_reload() -> None:
    before = _render(STATE)
    moved = STATE.model_copy(
        update={
            "networks": [
                STATE.networks[0].model_copy(update={"members": ["10.210.1.3", "10.210.1.4", "10.210.2.8"]}),
                *STATE.networks[1:],
            ]
        }
    )
    todo = plan(moved, Observed(before.fingerprint, before.elements), CONFIG)
    name = set_name("a/back")
    assert todo.commands is None and todo.fingerprint == before.fingerprint
    assert todo.elements == [
        {"delete": {"element": {"family": "inet", "table": "shoal", "name": name, "elem": ["10.210.2.7"]}}},
        {"add": {"element": {"family": "inet", "table": "shoal", "name": name, "elem": ["10.210.2.8"]}}},
    ]
    assert plan(moved, Observed(before.fingerprint, _render(moved).elements), CONFIG).empty


def test_a_new_network_changes_the_rules_and_reloads_the_table() -> None:
    before = _render(STATE)
    more = STATE.model_copy(update={"networks": [*STATE.networks, NetworkMembers(key="a/extra")]}, deep=True)
    more.containers[0].networks.append("a/extra")
    todo = plan(more, Observed(before.fingerprint, before.elements), CONFIG)
    assert todo.commands is not None and todo.fingerprint != before.fingerprint


def test_a_container_without_networks_is_on_its_projects_default() -> None:
    state = NodeState(
        node="a",
        subnet="10.210.1.0/24",
        containers=[ContainerSpec(id="x", image="x", ip="10.210.1.9", project="p")],
    )
    assert _render(state).elements[set_name("p/default")] == ["10.210.1.9"]


def test_set_elements_read_back_from_a_listing() -> None:
    listing = {
        "nftables": [
            {
                "set": {
                    "family": "inet",
                    "name": "net_1",
                    "table": "shoal",
                    "type": "ipv4_addr",
                    "elem": ["10.0.0.2", "10.0.0.1"],
                }
            },
            {"set": {"family": "inet", "name": "isolated", "table": "shoal", "type": "ipv4_addr"}},
        ]
    }
    assert parse_elements(json.dumps(listing)) == {"net_1": ["10.0.0.1", "10.0.0.2"], "isolated": []}


def test_a_natted_node_accepts_every_node_behind_its_relay_as_a_node() -> None:
    """n3 (NAT'd) peers only with the relay, whose allowed IPs carry n4's subnet: the ingress node
    or a NAT'd neighbour reaching n3's containers comes from one of these addresses."""
    relay = Peer(
        name="n1", public_key="k", subnet="10.210.1.0/24", allowed_ips=["10.210.1.0/24", "10.210.4.0/24"]
    )
    natted = NodeState(node="n3", subnet="10.210.3.0/24", peers=[relay])
    assert node_addresses(natted) == ["10.210.1.1", "10.210.3.1", "10.210.4.1"]
    rule = next(
        r for r in forward_rules(natted, "shoal0", "wg0", []) if {"accept": None} in r and len(r) == 4
    )
    assert rule[2]["match"]["right"] == {"set": ["10.210.1.1", "10.210.3.1", "10.210.4.1"]}


def test_a_natted_node_accepts_the_nodes_it_relays_whichever_relay_carries_them() -> None:
    """The agent moves relayed subnets between relays (and onto direct tunnels) by itself: the
    firewall takes the relayed nodes from the state's list, not from one peer's allowed IPs."""
    relay = Peer(name="n2", public_key="k", subnet="10.210.2.0/24", allowed_ips=["10.210.2.0/24"])
    far = Peer(name="n4", public_key="k4", subnet="10.210.4.0/24")
    natted = NodeState(node="n3", subnet="10.210.3.0/24", peers=[relay], relays=["n2"], relayed=[far])
    assert node_addresses(natted) == ["10.210.2.1", "10.210.3.1", "10.210.4.1"]

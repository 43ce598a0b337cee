"""The nftables ruleset renderer and the fingerprint read back from captured `list table` JSON."""

from __future__ import annotations

import json
from pathlib import Path

from shoal.agent.net.config import NetConfig
from shoal.agent.reconcilers.firewall import Observed, plan, with_addresses
from shoal.agent.render.nft import render
from shoal.agent.sys.nft import parse_fingerprint
from shoal.model.container import ContainerSpec, PortMapping
from shoal.model.state import NodeState, Peer

DATA = Path(__file__).parent / "data"
CONFIG = NetConfig(bridge="shoal0", wg_interface="wg0", management_ports=(7946, 8443))
STATE = NodeState(
    node="a",
    subnet="10.210.1.0/24",
    relay=True,
    peers=[Peer(name="b", public_key="k", subnet="10.210.2.0/24")],
    containers=[ContainerSpec(id="web-1", image="x", ports=[PortMapping(host_port=8080, container_port=80)])],
)


def _rules(commands: list[dict], chain: str) -> list[list[dict]]:  # type: ignore[type-arg]
    return [
        c["add"]["rule"]["expr"]
        for c in commands
        if "rule" in c["add"] and c["add"]["rule"]["chain"] == chain
    ]


def _render(state: NodeState) -> tuple[list[dict], str]:  # type: ignore[type-arg]
    ruleset = render(state, "shoal", bridge="shoal0", wg="wg0", dns_port=53, mgmt=[7946, 8443])
    return ruleset.commands, ruleset.fingerprint


def test_one_inet_table_with_six_chains_and_its_bridge_twin() -> None:
    commands, mark = _render(with_addresses(STATE, {"web-1": "10.210.1.2"}))
    assert commands[0] == {"add": {"table": {"family": "inet", "name": "shoal"}}}
    chains = [
        (c["add"]["chain"]["family"], c["add"]["chain"]["name"]) for c in commands if "chain" in c["add"]
    ]
    inet = ["guard", "forward", "input", "prerouting", "output", "postrouting"]
    assert chains == [*(("inet", n) for n in inet), ("bridge", "ports")]
    assert {c["add"][next(iter(c["add"]))].get("table", "shoal") for c in commands} == {"shoal"}
    first = next(c for c in commands if "rule" in c["add"])
    assert first["add"]["rule"]["chain"] == "guard" and first["add"]["rule"]["comment"] == mark


def test_published_port_dnat_from_outside_and_from_the_node() -> None:
    commands, _ = _render(with_addresses(STATE, {"web-1": "10.210.1.2"}))
    dnat = {"dnat": {"family": "ip", "addr": "10.210.1.2", "port": 80}}
    for chain in ("prerouting", "output"):
        (rule,) = [r for r in _rules(commands, chain) if "dnat" in r[-1]]
        assert rule[-1] == dnat and rule[1]["match"]["right"] == 8080


def test_container_without_address_publishes_nothing() -> None:
    commands, _ = _render(STATE)
    assert [r for r in _rules(commands, "prerouting") if "dnat" in r[-1]] == []


def test_relay_forwards_tunnel_to_tunnel_only_when_relaying() -> None:
    wg_to_wg = [
        {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "wg0"}},
        {"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "wg0"}},
        {"accept": None},
    ]
    assert wg_to_wg in _rules(_render(STATE)[0], "forward")
    assert wg_to_wg not in _rules(_render(STATE.model_copy(update={"relay": False}))[0], "forward")


def test_containers_reach_only_dns_on_the_node() -> None:
    rules = _rules(_render(STATE)[0], "input")
    text = json.dumps(rules)
    assert '"right": 53' in text and rules[3][-1] == {"drop": None} and len(rules[3]) == 2
    assert '"set": [7946, 8443]' in text and '"set": ["10.210.2.1"]' in text


def test_masquerade_only_for_traffic_leaving_the_cluster() -> None:
    rule, hairpin, _ = _rules(_render(STATE)[0], "postrouting")
    assert hairpin[1]["match"]["left"] == {"ct": {"key": "status"}} and hairpin[-1] == {"masquerade": None}
    assert rule[1]["match"] == {
        "op": "!=",
        "left": {"payload": {"protocol": "ip", "field": "daddr"}},
        "right": {"prefix": {"addr": "10.210.0.0", "len": 16}},
    }
    assert rule[3]["match"] == {
        "op": "!=",
        "left": {"payload": {"protocol": "ip", "field": "saddr"}},
        "right": "@isolated",
    }
    assert rule[-1] == {"masquerade": None}


def test_fingerprint_is_stable_and_tracks_changes() -> None:
    assert _render(STATE)[1] == _render(STATE)[1]
    assert _render(STATE)[1] != _render(STATE.model_copy(update={"relay": False}))[1]


def test_fingerprint_read_back_from_a_real_listing() -> None:
    listing = (DATA / "nft_list_table.json").read_text()
    mark = parse_fingerprint(listing)
    assert mark is not None and mark.startswith("shoal:")
    assert parse_fingerprint('{"nftables": [{"metainfo": {}}]}') is None


def test_plan_is_empty_when_the_fingerprint_matches() -> None:
    first = plan(STATE, Observed(None, {}), CONFIG)
    assert not first.empty and first.commands is not None
    elements = render(STATE, "shoal", bridge="shoal0", wg="wg0").elements
    assert plan(STATE, Observed(first.fingerprint, elements), CONFIG).empty

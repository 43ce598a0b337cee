"""The node's guards in the ruleset: loopback and metadata from the bridge, DNAT on `host_ip`,
anti-spoofing per container port (golden file: regenerate with SHOAL_REGOLD=1)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from shoal.agent.assemble import management_ports
from shoal.agent.config import AgentConfig
from shoal.agent.net.config import NetConfig
from shoal.agent.reconcilers.firewall import Observed, plan, wanted_ruleset
from shoal.agent.reconcilers.network import short_hash
from shoal.agent.render.nft_guard import METADATA_ADDRESS
from shoal.model.container import ContainerSpec, PortMapping
from shoal.model.ports import API_PORT
from shoal.model.state import NodeState

GOLDEN = Path(__file__).parents[1] / "data" / "net" / "nft_ruleset_guard.json"
CONFIG = NetConfig(bridge="shoal0", wg_interface="wg0", management_ports=(7946, 7443))
PORTS = [
    PortMapping(host_port=8080, container_port=80),
    PortMapping(host_port=8081, container_port=80, host_ip="127.0.0.1"),
    PortMapping(host_port=8082, container_port=80, host_ip="192.0.2.1", protocol="udp"),
    PortMapping(host_port=8083, container_port=80, host_ip="::1"),
]
STATE = NodeState(
    node="a",
    subnet="10.210.1.0/24",
    containers=[
        ContainerSpec(id="web-1", image="x", ip="10.210.1.2", ports=PORTS),
        ContainerSpec(id="db-1", image="x", ip="10.210.1.3"),
        ContainerSpec(id="new-1", image="x"),  # no address yet: no port rules
    ],
)


def _rules(state: NodeState, family: str, chain: str) -> list[list[dict[str, Any]]]:
    return [
        c["add"]["rule"]["expr"]
        for c in wanted_ruleset(state, CONFIG).commands
        if "rule" in c["add"] and (c["add"]["rule"]["family"], c["add"]["rule"]["chain"]) == (family, chain)
    ]


def test_whole_ruleset_matches_the_golden_file() -> None:
    got = json.dumps({"nftables": wanted_ruleset(STATE, CONFIG).commands}, indent=1, sort_keys=True) + "\n"
    if os.environ.get("SHOAL_REGOLD"):
        GOLDEN.write_text(got)
    assert got == GOLDEN.read_text()


def test_bridge_reaches_neither_loopback_nor_metadata_unless_the_policy_allows() -> None:
    text = json.dumps(_rules(STATE, "inet", "guard"))
    assert '"addr": "127.0.0.0", "len": 8' in text and METADATA_ADDRESS in text
    allowed = STATE.model_copy(update={"metadata_access": True})
    text = json.dumps(_rules(allowed, "inet", "guard"))
    assert '"addr": "127.0.0.0"' in text and METADATA_ADDRESS not in text


def test_published_port_matches_its_host_ip_only() -> None:
    destinations = {r[1]["match"]["right"]: r[0]["match"] for r in _rules(STATE, "inet", "prerouting")}
    assert destinations[8080]["left"] == {"fib": {"result": "type", "flags": ["daddr"]}}
    assert destinations[8081]["right"] == "127.0.0.1" and destinations[8082]["right"] == "192.0.2.1"
    assert 8083 not in destinations  # an IPv6 host_ip: no IPv4 address publishes it
    masquerade = _rules(STATE, "inet", "postrouting")[-1]
    assert masquerade[0]["match"]["right"] == {"prefix": {"addr": "127.0.0.0", "len": 8}}


def test_each_container_port_sends_only_its_own_address() -> None:
    web, db = f"shv{short_hash('web-1')}", f"shv{short_hash('db-1')}"
    elements = wanted_ruleset(STATE, CONFIG).elements
    assert elements["bridge/ports"] == sorted([web, db])
    assert elements["bridge/owned"] == sorted([f"{web} . 10.210.1.2", f"{db} . 10.210.1.3"])
    rules = _rules(STATE, "bridge", "ports")
    assert {r[0]["match"]["right"] for r in rules} == {"@ports"}
    assert [r[-2]["match"]["right"] for r in rules[1:]] == ["@owned", "@owned"]


def test_a_container_coming_is_an_element_change_not_a_reload() -> None:
    before = wanted_ruleset(STATE, CONFIG)
    more = STATE.model_copy(
        update={"containers": [*STATE.containers, ContainerSpec(id="api-1", image="x", ip="10.210.1.9")]}
    )
    todo = plan(more, Observed(before.fingerprint, before.elements), CONFIG)
    assert todo.commands is None and todo.elements is not None
    veth = f"shv{short_hash('api-1')}"
    bridge = [c["add"]["element"] for c in todo.elements if c["add"]["element"]["family"] == "bridge"]
    assert {(e["name"], json.dumps(e["elem"])) for e in bridge} == {
        ("ports", json.dumps([veth])),
        ("owned", json.dumps([{"concat": [veth, "10.210.1.9"]}])),
    }


def test_management_ports_come_from_the_agent_config_and_the_joined_url() -> None:
    assert management_ports(AgentConfig()) == (7946, API_PORT, 5432)
    assert management_ports(AgentConfig(agent_port=9000), "https://10.0.0.1:8443") == (
        9000,
        API_PORT,
        8443,
        5432,
    )
    assert API_PORT in NetConfig().management_ports


def test_the_containers_dns_is_never_dnat_to_a_published_53() -> None:
    dns = STATE.model_copy(
        update={"containers": [ContainerSpec(id="dns-1", image="x", ip="10.210.1.7", ports=[
            PortMapping(host_port=53, container_port=53, protocol="udp")
        ])]}
    )  # fmt: skip
    rules = _rules(dns, "inet", "prerouting")
    exempt = [r for r in rules if r[-1] == {"return": None}]
    assert [r[1]["match"]["right"] for r in exempt] == ["10.210.1.1", "10.210.1.1"]
    assert rules.index(exempt[-1]) < next(i for i, r in enumerate(rules) if "dnat" in r[-1])

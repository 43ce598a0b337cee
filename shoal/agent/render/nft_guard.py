"""The node's guards against its own containers, as libnftables JSON (agent/render: pure).

Kept apart from the forwarding ruleset (render/nft.py), which includes them:
- `guard` (inet, filter at prerouting -150, before any DNAT): nothing from the bridge to the
  node's loopback (the bridge routes 127/8 so that a port published on 127.0.0.1 reaches its
  container, see reconcilers/network.py) and, unless the node policy's `metadata` allows it,
  nothing to the cloud metadata address.
- `dns_exempt`: the containers' own DNS (the node's resolver on the bridge address) is never
  DNAT'd to a container that published the DNS port.
- `published`: which packets a published port's DNAT takes: every local address, or only the
  `host_ip` it was published on (127.0.0.1: only the node's own traffic reaches it).
- `bridge <table>` (bridge family, prerouting -300): a container's port on the bridge lets only its
  own source address out (IPv4 and ARP; no other ethertype), so CAP_NET_RAW cannot impersonate a
  neighbour. Applied in the same transaction as the inet table. Its rules are fixed; the ports
  (`ports`: veth names) and what each may send (`owned`: veth . address) are set elements, so a
  container coming or going is an element change, not a reload. In `Ruleset.elements` they are
  keyed `bridge/<set>`, an `owned` element written "veth . address".
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from shoal.model.addressing import overlay_ip
from shoal.model.container import PortMapping
from shoal.model.state import NodeState

Json = dict[str, Any]

METADATA_ADDRESS = "169.254.169.254"
LOOPBACK = "127.0.0.0/8"
SPOOF_CHAIN = ("ports", "filter", "prerouting", -300)
BRIDGE = "bridge/"  # the prefix of the bridge table's sets among a ruleset's elements
PORTS, OWNED = "ports", "owned"
_SET_TYPES: dict[str, Any] = {PORTS: "ifname", OWNED: ["ifname", "ipv4_addr"]}
_DROP: Json = {"drop": None}


def _match(left: Json, right: Any, op: str = "==") -> Json:
    return {"match": {"op": op, "left": left, "right": right}}


def _meta(key: str) -> Json:
    return {"meta": {"key": key}}


def _payload(protocol: str, field: str) -> Json:
    return {"payload": {"protocol": protocol, "field": field}}


def _prefix(cidr: str) -> Json:
    net = ipaddress.ip_network(cidr)
    return {"prefix": {"addr": str(net.network_address), "len": net.prefixlen}}


def guard_rules(state: NodeState, bridge: str) -> list[list[Json]]:
    """From the bridge: never to 127/8; to the metadata address only where the policy allows."""
    from_bridge = _match(_meta("iifname"), bridge)
    rules = [[from_bridge, _match(_payload("ip", "daddr"), _prefix(LOOPBACK)), _DROP]]
    if not state.metadata_access:
        rules.append([from_bridge, _match(_payload("ip", "daddr"), METADATA_ADDRESS), _DROP])
    return rules


def dns_exempt(state: NodeState, bridge: str, dns_port: int) -> list[list[Json]]:
    """First in the nat prerouting chain: queries from the bridge to its address skip the DNAT."""
    resolver = overlay_ip(state.subnet)  # the bridge's address
    to_resolver = [_match(_meta("iifname"), bridge), _match(_payload("ip", "daddr"), resolver)]
    return [[*to_resolver, _match(_payload(p, "dport"), dns_port), {"return": None}] for p in ("udp", "tcp")]


def published(port: PortMapping) -> list[Json] | None:
    """The destination a published port's DNAT matches; None: not an IPv4 address (published nowhere)."""
    if port.host_ip in ("", "0.0.0.0"):  # noqa: S104 (Compose's "every address")
        return [_match({"fib": {"result": "type", "flags": ["daddr"]}}, "local")]
    try:
        address = ipaddress.ip_address(port.host_ip)
    except ValueError:
        return None
    if address.version != 4:
        return None
    return [_match(_payload("ip", "daddr"), str(address))]


def spoof_rules() -> list[list[Json]]:
    """From a container's port: only IPv4 and ARP, each from the address that port owns."""
    port = _match(_meta("iifname"), f"@{PORTS}")
    ether = _payload("ether", "type")

    def owned(source: Json) -> Json:
        return _match({"concat": [_meta("iifname"), source]}, f"@{OWNED}", "!=")

    return [
        [port, _match(ether, {"set": ["ip", "arp"]}, "!="), _DROP],
        [port, _match(ether, "ip"), owned(_payload("ip", "saddr")), _DROP],
        [port, _match(ether, "arp"), owned(_payload("arp", "saddr ip")), _DROP],
    ]


def spoof_elements(state: NodeState, veths: Mapping[str, str]) -> dict[str, list[str]]:
    """`bridge/ports` and `bridge/owned`: each addressed container's veth and its address."""
    pairs = sorted((veths[c.id], c.ip) for c in state.containers if c.ip is not None and c.id in veths)
    return {BRIDGE + PORTS: [v for v, _ in pairs], BRIDGE + OWNED: [f"{v} . {ip}" for v, ip in pairs]}


def bridge_table(table: str) -> list[Json]:
    """`bridge <table>`: its sets (empty), one chain and its rules (agent/sys/nft.py deletes the old
    table first; the elements follow as `element_command`s)."""
    ref = {"family": "bridge", "name": table}
    name, kind, hook, prio = SPOOF_CHAIN
    chain = {"family": "bridge", "table": table, "name": name, "type": kind, "hook": hook, "prio": prio}
    commands: list[Json] = [{"add": {"table": ref}}]
    for set_name, set_type in _SET_TYPES.items():
        commands.append(
            {"add": {"set": {"family": "bridge", "table": table, "name": set_name, "type": set_type}}}
        )
    commands.append({"add": {"chain": {**chain, "policy": "accept"}}})
    for expr in spoof_rules():
        rule = {"family": "bridge", "table": table, "chain": name, "expr": expr}
        commands.append({"add": {"rule": rule}})
    return commands


def bridge_element_command(verb: str, table: str, key: str, elements: list[str]) -> Json:
    """An element add/delete on one of the bridge table's sets (`key`: `bridge/<set>`)."""
    name = key.removeprefix(BRIDGE)
    elem: list[Any] = [{"concat": e.split(" . ")} for e in elements] if name == OWNED else list(elements)
    return {verb: {"element": {"family": "bridge", "table": table, "name": name, "elem": elem}}}

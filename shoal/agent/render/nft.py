"""The `inet <table>` ruleset of a node as libnftables JSON (agent/render: pure).

Rendered whole from the node state and the network config, applied in one transaction by
agent/sys/nft.py, skipped when the fingerprint (the comment of the first forward rule) is unchanged.
- forward: established/related; other nodes (the ingress path) to containers; container to
  container (bridge → bridge, bridge ↔ tunnel) only when both addresses are in one network's set
  (`net_<hash>`, members cluster-wide, updated as elements); tunnel → tunnel on relays; containers
  out to the world unless in `isolated` (internal networks only); DNAT'd traffic in to containers;
  anything else touching the bridge or the tunnel is dropped.
- input: from the bridge only DNS (udp/tcp 53 on the bridge address) and established; from the
  tunnel nothing to the management ports unless it comes from another node's overlay address.
- nat: published ports DNAT'd to the container (prerouting for traffic from outside, output for
  the node's own; on every local address or only the one of `host_ip`), masquerade for container
  traffic leaving the cluster, for a container reaching a published port of its own node
  (hairpin), and for the node's own loopback reaching a port published on 127.0.0.1.
- guard, and the `bridge <table>` beside it: the node against its containers (render/nft_guard.py).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shoal.agent.render.nft_guard import (
    BRIDGE,
    LOOPBACK,
    bridge_element_command,
    bridge_table,
    dns_exempt,
    guard_rules,
    published,
    spoof_elements,
)
from shoal.model.addressing import overlay_ip
from shoal.model.container import networks_of
from shoal.model.ports import DNS_PORT
from shoal.model.state import NodeState

Json = dict[str, Any]


def _match(left: Json | str, right: Any, op: str = "==") -> Json:
    return {"match": {"op": op, "left": left, "right": right}}


def _meta(key: str) -> Json:
    return {"meta": {"key": key}}


def _payload(protocol: str, field: str) -> Json:
    return {"payload": {"protocol": protocol, "field": field}}


def _prefix(cidr: str) -> Json:
    net = ipaddress.ip_network(cidr, strict=False)
    return {"prefix": {"addr": str(net.network_address), "len": net.prefixlen}}


def _iif(name: str, op: str = "==") -> Json:
    return _match(_meta("iifname"), name, op)


def _oif(name: str, op: str = "==") -> Json:
    return _match(_meta("oifname"), name, op)


def _ct(key: str, values: list[str]) -> Json:
    return _match({"ct": {"key": key}}, values, "in")


_ACCEPT: Json = {"accept": None}
_DROP: Json = {"drop": None}


ISOLATED = "isolated"  # the set of this node's containers on internal networks only


def set_name(network: str) -> str:
    """A network's set: a short stable name (nft names are limited), its key in the set's comment."""
    return "net_" + hashlib.sha256(network.encode()).hexdigest()[:12]


def network_sets(state: NodeState) -> dict[str, tuple[str, list[str]]]:
    """set name -> (what it is, its elements): one per network a local container is on, members
    cluster-wide (the server's list, plus the local addresses the agent allocated), and `isolated`."""
    members: dict[str, set[str]] = {n.key: set(n.members) for n in state.networks}
    internal = {n.key for n in state.networks if n.internal}
    isolated: set[str] = set()
    for c in state.containers:
        if c.ip is None:
            continue
        nets = networks_of(c)
        for key in nets:
            members.setdefault(key, set()).add(c.ip)
        if all(k in internal or k in c.internal_networks for k in nets):
            isolated.add(c.ip)
    sets = {set_name(k): (k, sorted(v, key=ipaddress.IPv4Address)) for k, v in members.items()}
    sets[ISOLATED] = ("containers on internal networks only", sorted(isolated, key=ipaddress.IPv4Address))
    return sets


def _in_set(field: str, name: str, op: str = "==") -> Json:
    return _match(_payload("ip", field), f"@{name}", op)


def node_addresses(state: NodeState) -> list[str]:
    """Every node's overlay address: its own, its peers', and those of the NAT'd nodes a relay
    carries (their subnets are in the relay's allowed IPs, they are not peers of a NAT'd node)."""
    subnets = {state.subnet, *(p.subnet for p in state.peers)}
    subnets |= {s for p in state.peers for s in p.allowed_ips}
    subnets |= {p.subnet for p in state.relayed}
    return sorted({overlay_ip(s) for s in subnets})


def forward_rules(state: NodeState, bridge: str, wg: str, sets: list[str]) -> list[list[Json]]:
    """Container to container only within a network (a rule per network set, members changed as
    elements); the ingress path and other nodes (their overlay addresses) reach any container."""
    cluster = _prefix(state.cluster_cidr)
    nodes = node_addresses(state)
    rules = [
        [_ct("state", ["established", "related"]), _ACCEPT],
        [_iif(wg), _oif(bridge), _match(_payload("ip", "saddr"), {"set": nodes}), _ACCEPT],
        *([_in_set("saddr", name), _in_set("daddr", name), _ACCEPT] for name in sets),
    ]
    if state.relay:
        rules.append([_iif(wg), _oif(wg), _ACCEPT])
    out = _match(_payload("ip", "daddr"), cluster, "!=")
    return [
        *rules,
        [_iif(bridge), _oif(wg, "!="), out, _in_set("saddr", ISOLATED, "!="), _ACCEPT],
        [_ct("status", ["dnat"]), _oif(bridge), _ACCEPT],
        [_iif(bridge), _DROP],
        [_oif(bridge), _DROP],
        [_iif(wg), _DROP],
        [_oif(wg), _DROP],
    ]


def input_rules(state: NodeState, bridge: str, wg: str, dns_port: int, mgmt: list[int]) -> list[list[Json]]:
    gateway = overlay_ip(state.subnet)
    nodes = sorted(overlay_ip(p.subnet) for p in state.peers)
    rules = [
        [_iif(bridge), _ct("state", ["established", "related"]), _ACCEPT],
        *(
            [
                _iif(bridge),
                _match(_payload("ip", "daddr"), gateway),
                _match(_payload(proto, "dport"), dns_port),
                _ACCEPT,
            ]
            for proto in ("udp", "tcp")
        ),
        [_iif(bridge), _DROP],
    ]
    if mgmt:
        from_nodes = [_match(_payload("ip", "saddr"), {"set": nodes}, "!=")] if nodes else []
        ports = _match(_payload("tcp", "dport"), {"set": sorted(mgmt)})
        rules.append([_iif(wg), *from_nodes, ports, _DROP])
    return rules


def dnat_rules(state: NodeState) -> list[list[Json]]:
    rules = []
    for container in sorted(state.containers, key=lambda c: c.id):
        for port in container.ports:
            destination = published(port)
            if container.ip is None or destination is None:
                continue
            rules.append(
                [
                    *destination,
                    _match(_payload(port.protocol, "dport"), port.host_port),
                    {"dnat": {"family": "ip", "addr": container.ip, "port": port.container_port}},
                ]
            )
    return rules


def postrouting_rules(state: NodeState, bridge: str) -> list[list[Json]]:
    return [
        [
            _match(_payload("ip", "saddr"), _prefix(state.subnet)),
            _match(_payload("ip", "daddr"), _prefix(state.cluster_cidr), "!="),
            _oif(bridge, "!="),
            _in_set("saddr", ISOLATED, "!="),
            {"masquerade": None},
        ],
        # hairpin: a container reaching a published port of its own node is answered through it
        [
            _match(_payload("ip", "saddr"), _prefix(state.subnet)),
            _ct("status", ["dnat"]),
            _oif(bridge),
            {"masquerade": None},
        ],
        # the node's own loopback reaching a port published on 127.0.0.1
        [_match(_payload("ip", "saddr"), _prefix(LOOPBACK)), _oif(bridge), {"masquerade": None}],
    ]


_CHAINS = {
    "guard": ("filter", "prerouting", -150),
    "forward": ("filter", "forward", 0),
    "input": ("filter", "input", 0),
    "prerouting": ("nat", "prerouting", -100),
    "output": ("nat", "output", -100),
    "postrouting": ("nat", "postrouting", 100),
}


def chains(
    state: NodeState, bridge: str, wg: str, dns_port: int, mgmt: list[int], *, sets: list[str]
) -> dict[str, list[list[Json]]]:
    return {
        "guard": guard_rules(state, bridge),
        "forward": forward_rules(state, bridge, wg, [n for n in sets if n != ISOLATED]),
        "input": input_rules(state, bridge, wg, dns_port, mgmt),
        "prerouting": [*dns_exempt(state, bridge, dns_port), *dnat_rules(state)],
        "output": dnat_rules(state),
        "postrouting": postrouting_rules(state, bridge),
    }


def fingerprint(body: Any) -> str:
    return "shoal:" + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Ruleset:
    """The table's commands (after its own add/delete), its fingerprint, and its sets' elements.

    The fingerprint covers chains, rules and which sets exist, not their elements: a change of
    members alone keeps it, and is applied as element adds and deletes.
    """

    commands: list[Json]
    fingerprint: str
    elements: dict[str, list[str]]


def render(
    state: NodeState,
    table: str,
    *,
    bridge: str,
    wg: str,
    dns_port: int = DNS_PORT,
    mgmt: list[int] | None = None,
    veths: Mapping[str, str] | None = None,
) -> Ruleset:
    """`veths`: each container's port on the bridge (its id -> the host side of its veth)."""
    sets = network_sets(state)
    body = chains(state, bridge, wg, dns_port, list(mgmt or []), sets=sorted(sets))
    named = {n: what for n, (what, _) in sorted(sets.items())}
    mark = fingerprint({"chains": body, "sets": named, "bridge": bridge_table(table)})
    commands: list[Json] = [{"add": {"table": {"family": "inet", "name": table}}}]
    for name, (what, elements) in sorted(sets.items()):
        commands.append({"add": {"set": _set(table, name, what)}})
        if elements:
            commands.append(element_command("add", table, name, elements))
    first = len(commands) + 1
    for name, (kind, hook, prio) in _CHAINS.items():
        chain = {"family": "inet", "table": table, "name": name, "type": kind, "hook": hook, "prio": prio}
        commands.append({"add": {"chain": {**chain, "policy": "accept"}}})
        commands.extend(_rule(table, name, expr) for expr in body[name])
    commands[first]["add"]["rule"]["comment"] = mark  # the first rule carries the fingerprint
    commands += bridge_table(table)
    ports = spoof_elements(state, veths or {})
    commands += [element_command("add", table, name, elems) for name, elems in ports.items() if elems]
    return Ruleset(commands, mark, {**{n: e for n, (_, e) in sets.items()}, **ports})


def _set(table: str, name: str, what: str) -> Json:
    return {"family": "inet", "table": table, "name": name, "type": "ipv4_addr", "comment": what[:128]}


def element_command(verb: str, table: str, name: str, elements: list[str]) -> Json:
    if name.startswith(BRIDGE):
        return bridge_element_command(verb, table, name, elements)
    return {verb: {"element": {"family": "inet", "table": table, "name": name, "elem": elements}}}


def element_changes(table: str, wanted: dict[str, list[str]], observed: dict[str, list[str]]) -> list[Json]:
    """The element deletes and adds that turn the observed sets into the wanted ones (same sets)."""
    commands = []
    for name in sorted(wanted):
        have, want = set(observed.get(name, [])), set(wanted[name])
        if have - want:
            commands.append(element_command("delete", table, name, sorted(have - want)))
        if want - have:
            commands.append(element_command("add", table, name, sorted(want - have)))
    return commands


def _rule(table: str, chain: str, expr: list[Json]) -> Json:
    return {"add": {"rule": {"family": "inet", "table": table, "chain": chain, "expr": expr}}}

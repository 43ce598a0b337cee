"""The `inet <table>` ruleset of a node as libnftables JSON (agent/render: pure).

Rendered whole from the node state and the network config, applied in one transaction by
agent/sys/nft.py, skipped when the fingerprint (the comment of the first forward rule) is unchanged.
- forward: established/related; bridge → tunnel and tunnel → bridge within the cluster CIDR;
  tunnel → tunnel on relays; containers out to the world; DNAT'd traffic in to containers;
  anything else touching the bridge or the tunnel is dropped.
- input: from the bridge only DNS (udp/tcp 53 on the bridge address) and established; from the
  tunnel nothing to the management ports unless it comes from another node's overlay address.
- nat: published ports DNAT'd to the container (prerouting for traffic from outside, output for
  the node's own), masquerade for container traffic leaving the cluster and for a container
  reaching a published port of its own node (hairpin).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from typing import Any

from shoal.model.addressing import overlay_ip
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


def _local_dst() -> Json:
    return _match({"fib": {"result": "type", "flags": ["daddr"]}}, "local")


def forward_rules(state: NodeState, bridge: str, wg: str) -> list[list[Json]]:
    cluster = _prefix(state.cluster_cidr)
    rules = [
        [_ct("state", ["established", "related"]), _ACCEPT],
        [_iif(bridge), _oif(wg), _match(_payload("ip", "daddr"), cluster), _ACCEPT],
        [_iif(wg), _oif(bridge), _match(_payload("ip", "saddr"), cluster), _ACCEPT],
    ]
    if state.relay:
        rules.append([_iif(wg), _oif(wg), _ACCEPT])
    return [
        *rules,
        [_iif(bridge), _oif(bridge), _ACCEPT],
        [_iif(bridge), _oif(wg, "!="), _match(_payload("ip", "daddr"), cluster, "!="), _ACCEPT],
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
            if container.ip is None:
                continue
            rules.append(
                [
                    _local_dst(),
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
            {"masquerade": None},
        ],
        # hairpin: a container reaching a published port of its own node is answered through it
        [
            _match(_payload("ip", "saddr"), _prefix(state.subnet)),
            _ct("status", ["dnat"]),
            _oif(bridge),
            {"masquerade": None},
        ],
    ]


_CHAINS = {
    "forward": ("filter", "forward", 0),
    "input": ("filter", "input", 0),
    "prerouting": ("nat", "prerouting", -100),
    "output": ("nat", "output", -100),
    "postrouting": ("nat", "postrouting", 100),
}


def chains(
    state: NodeState, bridge: str, wg: str, dns_port: int, mgmt: list[int]
) -> dict[str, list[list[Json]]]:
    return {
        "forward": forward_rules(state, bridge, wg),
        "input": input_rules(state, bridge, wg, dns_port, mgmt),
        "prerouting": dnat_rules(state),
        "output": dnat_rules(state),
        "postrouting": postrouting_rules(state, bridge),
    }


def fingerprint(body: dict[str, list[list[Json]]]) -> str:
    return "shoal:" + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32]


def render(
    state: NodeState, table: str, *, bridge: str, wg: str, dns_port: int = 53, mgmt: list[int] | None = None
) -> tuple[list[Json], str]:
    """The commands (after the table's own add/delete) that build the table, and its fingerprint."""
    body = chains(state, bridge, wg, dns_port, list(mgmt or []))
    mark = fingerprint(body)
    commands: list[Json] = [{"add": {"table": {"family": "inet", "name": table}}}]
    for name, (kind, hook, prio) in _CHAINS.items():
        chain = {"family": "inet", "table": table, "name": name, "type": kind, "hook": hook, "prio": prio}
        commands.append({"add": {"chain": {**chain, "policy": "accept"}}})
        commands.extend(_rule(table, name, expr) for expr in body[name])
    commands[2]["add"]["rule"]["comment"] = mark  # the first forward rule carries the fingerprint
    return commands, mark


def _rule(table: str, chain: str, expr: list[Json]) -> Json:
    return {"add": {"rule": {"family": "inet", "table": table, "chain": chain, "expr": expr}}}

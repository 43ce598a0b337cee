"""The sandbox's shape as plain data: names and addresses of every namespace, link and node.

First step of `shoal sandbox up`: `plan_layout(nodes, nat)` decides everything (pure); `net.py`
builds it with pyroute2, `nodes.py` starts a holder per node, `cluster.py` runs shoal on it, and
`teardown.py` removes it. Addresses come from the documentation ranges only:

- 203.0.113.0/24 is the "internet": a bridge in namespace ``sbx-inet`` (203.0.113.1 its gateway,
  203.0.113.2 the registry), public nodes at 203.0.113.(10+i), the NAT router at 203.0.113.254.
- 198.51.100.0/24 is the home LAN behind the router namespace ``sbx-router`` (198.51.100.1),
  NAT'd nodes at 198.51.100.(10+i).
- the host joins the internet bridge as 203.0.113.250 on link ``sbx-host`` (its only route into
  the sandbox is that connected /24). 192.0.2.0/24 is left alone: hosts, such as this one, use it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from shoal.errors import ConfigError

PREFIX = "sbx-"
INET_NS = "sbx-inet"
ROUTER_NS = "sbx-router"
INET_BRIDGE = "sbx-br"
INET_GATEWAY = "203.0.113.1"
INET_PREFIXLEN = 24
REGISTRY_IP = "203.0.113.2"
REGISTRY_PORT = 5000
# Free for a password-protected registry a test runs beside the sandbox one (plain HTTP as well,
# so the agents are told it is insecure): tests/e2e/test_registry_auth.py.
PRIVATE_REGISTRY_PORT = 5001
ROUTER_WAN_IP = "203.0.113.254"
ROUTER_WAN_IF = "wan0"
ROUTER_WAN_PEER = "sbx-rtr"
LAN_BRIDGE = "lan-br"
LAN_GATEWAY = "198.51.100.1"
LAN_CIDR = "198.51.100.0/24"
INET_CIDR = "203.0.113.0/24"
HOST_LINK = "sbx-host"
HOST_PEER = "host0"
HOST_IP = "203.0.113.250"
NODE_IF = "eth0"
WIREGUARD_PORT = 51820
SERVER_PORT = 8443
MAX_NODES = 9


@dataclass(frozen=True)
class NodePlan:
    """One node: its name, namespace, underlay address and where it sits."""

    index: int
    name: str
    netns: str
    address: str
    nat: bool
    ingress: bool

    @property
    def gateway(self) -> str:
        """The node's default gateway: the router on the LAN, else the internet bridge."""
        return LAN_GATEWAY if self.nat else INET_GATEWAY

    @property
    def peer_if(self) -> str:
        """The name of the node's veth end on its bridge (in sbx-inet or sbx-router)."""
        return f"{PREFIX}n{self.index}" if not self.nat else f"n{self.index}"

    @property
    def endpoint(self) -> str | None:
        """The WireGuard endpoint others dial, or None behind NAT."""
        return None if self.nat else f"{self.address}:{WIREGUARD_PORT}"


@dataclass(frozen=True)
class Layout:
    """The whole sandbox: its nodes, and whether a NAT router is needed."""

    nodes: tuple[NodePlan, ...]

    @property
    def has_router(self) -> bool:
        return any(node.nat for node in self.nodes)

    @property
    def registry(self) -> str:
        return f"{REGISTRY_IP}:{REGISTRY_PORT}"

    @property
    def server_url(self) -> str:
        return f"https://{self.nodes[0].address}:{SERVER_PORT}"

    def node(self, name: str) -> NodePlan:
        for node in self.nodes:
            if node.name == name:
                return node
        raise ConfigError(f"no sandbox node named {name!r}")


def plan_layout(nodes: int, nat: int) -> Layout:
    """Nodes n1..nN; the last ``nat`` sit behind the router; the last public one runs ingress."""
    check_counts(nodes, nat)
    public = nodes - nat
    plans = tuple(_node(i, nat=i > public, ingress=i == public) for i in range(1, nodes + 1))
    return Layout(nodes=plans)


def overlapping(host_addresses: list[str]) -> list[str]:
    """Host addresses (``a.b.c.d/len``) inside the sandbox's ranges: the sandbox cannot use them."""
    ranges = [ipaddress.ip_network(INET_CIDR), ipaddress.ip_network(LAN_CIDR)]
    nets = [ipaddress.ip_interface(a).network for a in host_addresses if ":" not in a]
    return [str(n) for n in nets if any(n.overlaps(r) for r in ranges)]


def check_counts(nodes: int, nat: int) -> None:
    """Node 1 (the server) must be public, and names and addresses must fit."""
    if not 1 <= nodes <= MAX_NODES:
        raise ConfigError(f"--nodes must be between 1 and {MAX_NODES}, got {nodes}")
    if not 0 <= nat < nodes:
        raise ConfigError(f"--nat must be between 0 and {nodes - 1} (node 1 runs the server), got {nat}")


def _node(index: int, *, nat: bool, ingress: bool) -> NodePlan:
    net = "198.51.100" if nat else "203.0.113"
    return NodePlan(index, f"n{index}", f"{PREFIX}n{index}", f"{net}.{10 + index}", nat, ingress)


def router_ruleset() -> dict[str, Any]:
    """libnftables JSON for the router namespace: masquerade the LAN out of the WAN link only."""
    table: dict[str, Any] = {"family": "ip", "name": "sbx-nat"}
    chain: dict[str, Any] = {"family": "ip", "table": "sbx-nat", "name": "postrouting", "type": "nat"}
    chain |= {"hook": "postrouting", "prio": 100, "policy": "accept"}
    match_src = {"match": {"op": "==", "left": _payload("saddr"), "right": _prefix(LAN_CIDR)}}
    match_oif = {"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": ROUTER_WAN_IF}}
    rule: dict[str, Any] = {"family": "ip", "table": "sbx-nat", "chain": "postrouting"}
    rule["expr"] = [match_src, match_oif, {"masquerade": None}]
    commands = [{"add": {"table": table}}, {"add": {"chain": chain}}, {"add": {"rule": rule}}]
    return {"nftables": commands}


def _payload(field: str) -> dict[str, Any]:
    return {"payload": {"protocol": "ip", "field": field}}


def _prefix(cidr: str) -> dict[str, Any]:
    addr, length = cidr.split("/")
    return {"prefix": {"addr": addr, "len": int(length)}}

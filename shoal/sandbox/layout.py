"""The sandbox's shape as plain data: names and addresses of every namespace, link and node.

First step of `shoal sandbox up`: `plan_layout(nodes, nat, nat_mode)` decides everything (pure);
`net.py` builds it with pyroute2, `nodes.py` starts a holder per node, `cluster.py` runs shoal on
it, and `teardown.py` removes it. Addresses come from the documentation ranges only:

- 203.0.113.0/24 is the "internet": a bridge in namespace ``sbx-inet`` (203.0.113.1 its gateway,
  203.0.113.2 the registry), public nodes at 203.0.113.(10+i), the NAT router at 203.0.113.254.
- 198.51.100.0/24 is the home LAN behind the router namespace ``sbx-router`` (198.51.100.1),
  NAT'd nodes at 198.51.100.(10+i): one permissive NAT (``--nat-mode shared``, the default; it
  keeps a flow's source port), the NAT'd nodes talking directly over its LAN.
- ``--nat-mode symmetric`` gives each NAT'd node n<i> a router of its own instead, ``sbx-router-n<i>``
  (WAN 203.0.113.(240+i)), with its own LAN 198.51.100.(16i)/28 (gateway .(16i+1), the node at
  .(16i+10)), masquerading with ``fully-random`` source ports: a NAT that maps each destination to
  a new port, so no direct path between NAT'd nodes can be punched and they go through a relay.
- the host joins the internet bridge as 203.0.113.250 on link ``sbx-host`` (its only route into
  the sandbox is that connected /24). 192.0.2.0/24 is left alone: hosts, such as this one, use it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shoal.errors import ConfigError
from shoal.model.ports import WIREGUARD_PORT

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
SERVER_PORT = 8443
NODE_STATE = Path("/var/lib/shoal")  # inside a node: its agent's (and server's) data, bound by the holder
MAX_NODES = 9
NAT_SHARED = "shared"  # one permissive NAT router, every NAT'd node on its LAN (the default)
NAT_SYMMETRIC = "symmetric"  # a router per NAT'd node, a new source port per destination
NAT_MODES = (NAT_SHARED, NAT_SYMMETRIC)
SYMMETRIC_WAN_BASE = 240  # router of n<i>: 203.0.113.(240+i), below the host's .250
SYMMETRIC_LAN_PREFIXLEN = 28


@dataclass(frozen=True)
class RouterPlan:
    """A NAT router namespace: its WAN leg on the internet bridge, its LAN, how it masquerades."""

    netns: str
    wan_ip: str
    wan_peer: str  # its WAN veth's end on the internet bridge (in sbx-inet)
    lan_cidr: str
    lan_gateway: str
    random_ports: bool

    @property
    def lan_prefixlen(self) -> int:
        return int(self.lan_cidr.split("/")[1])


SHARED_ROUTER = RouterPlan(ROUTER_NS, ROUTER_WAN_IP, ROUTER_WAN_PEER, LAN_CIDR, LAN_GATEWAY, False)


@dataclass(frozen=True)
class NodePlan:
    """One node: its name, namespace, underlay address and where it sits."""

    index: int
    name: str
    netns: str
    address: str
    nat: bool
    ingress: bool
    router: RouterPlan | None = None  # the NAT router in front of it (None: a public node)

    @property
    def gateway(self) -> str:
        """The node's default gateway: its router on the LAN, else the internet bridge."""
        return self.router.lan_gateway if self.router else INET_GATEWAY

    @property
    def prefixlen(self) -> int:
        """The prefix length of the node's address on its bridge."""
        return self.router.lan_prefixlen if self.router else INET_PREFIXLEN

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
    """The whole sandbox: its nodes, and the NAT routers in front of the NAT'd ones."""

    nodes: tuple[NodePlan, ...]
    nat_mode: str = NAT_SHARED

    @property
    def has_router(self) -> bool:
        return any(node.nat for node in self.nodes)

    @property
    def routers(self) -> tuple[RouterPlan, ...]:
        """Every NAT router, once each, in node order."""
        found = [node.router for node in self.nodes if node.router]
        return tuple(dict.fromkeys(found))

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


def plan_layout(nodes: int, nat: int, nat_mode: str = NAT_SHARED) -> Layout:
    """Nodes n1..nN; the last ``nat`` sit behind a NAT router (one shared, or one each with
    ``symmetric``); the last public one runs ingress."""
    check_counts(nodes, nat)
    if nat_mode not in NAT_MODES:
        raise ConfigError(f"--nat-mode must be one of {', '.join(NAT_MODES)}, got {nat_mode!r}")
    public = nodes - nat
    plans = tuple(_node(i, public, nat_mode) for i in range(1, nodes + 1))
    return Layout(nodes=plans, nat_mode=nat_mode)


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


def _node(index: int, public: int, nat_mode: str) -> NodePlan:
    name, netns, ingress = f"n{index}", f"{PREFIX}n{index}", index == public
    if index <= public:
        return NodePlan(index, name, netns, f"203.0.113.{10 + index}", False, ingress)
    if nat_mode == NAT_SHARED:
        return NodePlan(index, name, netns, f"198.51.100.{10 + index}", True, ingress, SHARED_ROUTER)
    base = 16 * index
    return NodePlan(index, name, netns, f"198.51.100.{base + 10}", True, ingress, symmetric_router(index))


def symmetric_router(index: int) -> RouterPlan:
    """The router of NAT'd node n<index> alone: its own /28 LAN, a new source port per flow."""
    base = 16 * index
    return RouterPlan(
        netns=f"{ROUTER_NS}-n{index}",
        wan_ip=f"203.0.113.{SYMMETRIC_WAN_BASE + index}",
        wan_peer=f"{ROUTER_WAN_PEER}-n{index}",
        lan_cidr=f"198.51.100.{base}/{SYMMETRIC_LAN_PREFIXLEN}",
        lan_gateway=f"198.51.100.{base + 1}",
        random_ports=True,
    )


def router_ruleset(router: RouterPlan = SHARED_ROUTER) -> dict[str, Any]:
    """libnftables JSON for a router namespace: masquerade its LAN out of the WAN link only
    (with ``fully-random`` source ports for a symmetric NAT)."""
    table: dict[str, Any] = {"family": "ip", "name": "sbx-nat"}
    chain: dict[str, Any] = {"family": "ip", "table": "sbx-nat", "name": "postrouting", "type": "nat"}
    chain |= {"hook": "postrouting", "prio": 100, "policy": "accept"}
    match_src = {"match": {"op": "==", "left": _payload("saddr"), "right": _prefix(router.lan_cidr)}}
    match_oif = {"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": ROUTER_WAN_IF}}
    rule: dict[str, Any] = {"family": "ip", "table": "sbx-nat", "chain": "postrouting"}
    masquerade = {"flags": ["fully-random"]} if router.random_ports else None
    rule["expr"] = [match_src, match_oif, {"masquerade": masquerade}]
    commands = [{"add": {"table": table}}, {"add": {"chain": chain}}, {"add": {"rule": rule}}]
    return {"nftables": commands}


def _payload(field: str) -> dict[str, Any]:
    return {"payload": {"protocol": "ip", "field": field}}


def _prefix(cidr: str) -> dict[str, Any]:
    addr, length = cidr.split("/")
    return {"prefix": {"addr": addr, "len": int(length)}}

"""Builds and removes the sandbox's namespaces and links with pyroute2 (the layout is `layout.py`).

Second step of `shoal sandbox up`, last step of `down`. Everything it makes is named ``sbx-*``
(namespaces) or lives inside those namespaces, apart from the host link ``sbx-host`` (with its
connected route to 203.0.113.0/24, nothing else): so removing the ``sbx-*`` namespaces and that
link removes it all, including the router's nftables table, which dies with its namespace.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pyroute2 import IPRoute, NetNS, netns

from shoal.errors import ShoalError
from shoal.sandbox import layout as L
from shoal.sandbox.layout import Layout, NodePlan, RouterPlan

NETNS_DIR = "/run/netns"


class NetworkError(ShoalError):
    """A namespace, link or rule of the sandbox could not be made."""


def netns_path(name: str) -> str:
    return f"{NETNS_DIR}/{name}"


def build_network(layout: Layout) -> None:
    """Make every namespace, bridge, veth, address, route and NAT rule of ``layout``
    (`check_host` first: a failure here is cleaned up by removing every ``sbx-*`` thing)."""
    create_namespaces(layout)
    build_inet()
    build_host_link()
    for router in layout.routers:
        build_router(router)
    for node in layout.nodes:
        build_node_link(node)


def create_namespaces(layout: Layout) -> None:
    names = [L.INET_NS, *(r.netns for r in layout.routers), *(n.netns for n in layout.nodes)]
    existing = set(netns.listnetns())
    for name in names:
        if name in existing:
            raise NetworkError(f"namespace {name} already exists: run `shoal sandbox down` first")
        netns.create(name)
        with NetNS(name) as ns:
            _up(ns, "lo")


@contextmanager
def _ns(name: str) -> Iterator[Any]:
    with NetNS(name) as ns:
        yield ns


def _up(ns: Any, ifname: str, master: str | None = None) -> int:
    index = int(ns.link_lookup(ifname=ifname)[0])
    if master is not None:
        ns.link("set", index=index, master=ns.link_lookup(ifname=master)[0])
    ns.link("set", index=index, state="up")
    return index


def _addr(ns: Any, ifname: str, address: str, prefixlen: int) -> None:
    ns.addr("add", index=ns.link_lookup(ifname=ifname)[0], address=address, prefixlen=prefixlen)


def build_inet() -> None:
    """The internet bridge with its gateway and registry addresses; it forwards between links."""
    with _ns(L.INET_NS) as ns:
        ns.link("add", ifname=L.INET_BRIDGE, kind="bridge")
        _up(ns, L.INET_BRIDGE)
        _addr(ns, L.INET_BRIDGE, L.INET_GATEWAY, L.INET_PREFIXLEN)
        _addr(ns, L.INET_BRIDGE, L.REGISTRY_IP, L.INET_PREFIXLEN)
    enable_forwarding(L.INET_NS)


def check_host() -> None:
    """Refuse to start when a sandbox exists or the host already uses the sandbox's ranges."""
    existing = sandbox_namespaces()
    with IPRoute() as host:
        if existing or host.link_lookup(ifname=L.HOST_LINK):
            what = ", ".join(existing) or f"link {L.HOST_LINK}"
            raise NetworkError(f"a sandbox already exists ({what}): run `shoal sandbox down` first")
        addrs = [f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}" for a in host.get_addr()]
    clash = L.overlapping(addrs)
    if clash:
        raise NetworkError(f"this host already uses {', '.join(clash)}, which the sandbox needs")


def build_host_link() -> None:
    """A veth from the host onto the internet bridge: the host's only way into the sandbox."""
    with IPRoute() as host:
        host.link(
            "add", ifname=L.HOST_LINK, kind="veth", peer={"ifname": L.HOST_PEER, "net_ns_fd": L.INET_NS}
        )
        _up(host, L.HOST_LINK)
        _addr(host, L.HOST_LINK, L.HOST_IP, L.INET_PREFIXLEN)
    with _ns(L.INET_NS) as ns:
        _up(ns, L.HOST_PEER, master=L.INET_BRIDGE)


def build_router(router: RouterPlan) -> None:
    """A NAT router: a WAN leg on the internet bridge, its LAN bridge, masquerade."""
    with _ns(L.INET_NS) as ns:
        ns.link(
            "add",
            ifname=router.wan_peer,
            kind="veth",
            peer={"ifname": L.ROUTER_WAN_IF, "net_ns_fd": router.netns},
        )
        _up(ns, router.wan_peer, master=L.INET_BRIDGE)
    with _ns(router.netns) as ns:
        _up(ns, L.ROUTER_WAN_IF)
        _addr(ns, L.ROUTER_WAN_IF, router.wan_ip, L.INET_PREFIXLEN)
        ns.route("add", dst="0.0.0.0/0", gateway=L.INET_GATEWAY)
        ns.link("add", ifname=L.LAN_BRIDGE, kind="bridge")
        _up(ns, L.LAN_BRIDGE)
        _addr(ns, L.LAN_BRIDGE, router.lan_gateway, router.lan_prefixlen)
    enable_forwarding(router.netns)
    load_nft(router.netns, L.router_ruleset(router))


def build_node_link(node: NodePlan) -> None:
    """The node's eth0, its peer on the internet bridge or its router's LAN bridge, its default route."""
    bridge_ns, bridge = (node.router.netns, L.LAN_BRIDGE) if node.router else (L.INET_NS, L.INET_BRIDGE)
    with _ns(bridge_ns) as ns:
        ns.link("add", ifname=node.peer_if, kind="veth", peer={"ifname": L.NODE_IF, "net_ns_fd": node.netns})
        _up(ns, node.peer_if, master=bridge)
    with _ns(node.netns) as ns:
        _up(ns, L.NODE_IF)
        _addr(ns, L.NODE_IF, node.address, node.prefixlen)
        ns.route("add", dst="0.0.0.0/0", gateway=node.gateway)


def in_netns(name: str) -> list[str]:
    """The argv prefix that runs a command in a sandbox network namespace (and nothing else)."""
    return ["nsenter", f"--net={netns_path(name)}"]


def enable_forwarding(name: str) -> None:
    _run([*in_netns(name), "sysctl", "-qw", "net.ipv4.ip_forward=1"])


def load_nft(name: str, ruleset: dict[str, Any]) -> None:
    """Load a libnftables JSON ruleset into namespace ``name`` in one transaction."""
    _run([*in_netns(name), "nft", "-j", "-f", "-"], json.dumps(ruleset))


def _run(argv: list[str], stdin: str | None = None) -> None:
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False, timeout=30)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise NetworkError(f"{' '.join(argv[2:4])} failed: {tail}")


def sandbox_namespaces() -> list[str]:
    """Every ``sbx-*`` network namespace on this machine (ours, whether recorded or not)."""
    return sorted(name for name in netns.listnetns() if name.startswith(L.PREFIX))


def remove_network() -> list[str]:
    """Delete the host link and every ``sbx-*`` namespace; returns what was removed."""
    removed = []
    with IPRoute() as host:
        for index in host.link_lookup(ifname=L.HOST_LINK):
            host.link("del", index=index)
            removed.append(f"link {L.HOST_LINK}")
    for name in sandbox_namespaces():
        netns.remove(name)
        removed.append(f"netns {name}")
    return removed

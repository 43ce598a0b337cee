"""The container network of a node: bridge, per-container netns + veth + address (agent step).

Reconciler shape: `observe()` reads the bridge, its addresses and ip_forward; the pure `plan()`
lists what differs from the node state; `apply()` makes only those writes (an empty plan makes no
netlink write). `attach()` / `detach()` are called around a container's life: a netns under the
configured dir, a veth onto the bridge, an address from the node subnet (persisted IPAM), a
default route via the bridge, MTU 1420 (see net.config), and the hosts/hostname/resolv.conf files
the runtime binds in. Containers that left the node state are detached by the plan once no
process lives in their netns any more (a stopping container keeps its network until it is gone).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import ipaddress
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shoal.agent.net.config import NetConfig
from shoal.agent.net.files import ContainerFiles, write_container_files
from shoal.agent.net.ipam import Ipam, bridge_address
from shoal.agent.net.nsthread import in_netns, write_sysctl
from shoal.agent.sys.netlink import (
    Link,
    Netlink,
    configure_container_side,
    create_netns,
    in_own_netns,
    netns_in_use,
    remove_netns,
)
from shoal.model.state import NodeState

FORWARD_SYSCTL = "net/ipv4/ip_forward"
LOCALNET_SYSCTL = "net/ipv4/conf/{bridge}/route_localnet"  # a port published on 127.0.0.1 (its
# DNAT to a container leaves through the bridge; the firewall drops 127/8 arriving from it)


@dataclass(frozen=True)
class NetObserved:
    bridge: Link | None
    bridge_addresses: tuple[str, ...]
    forwarding: bool  # ip_forward, and route_localnet on the bridge
    attached: tuple[str, ...]  # container ids holding an address
    in_use: tuple[str, ...] = ()  # attached ids whose netns still has a process (stopping)


@dataclass(frozen=True)
class PreparedNetwork:
    """A container's netns and address, and what is left to plug it in (None: it is already)."""

    netns: Path
    address: str
    plug: Callable[[], None] | None


@dataclass(frozen=True)
class NetPlan:
    create_bridge: bool = False
    set_bridge: dict[str, object] = field(default_factory=dict)  # mtu / state
    add_addresses: tuple[str, ...] = ()
    enable_forwarding: bool = False
    detach: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (
            self.create_bridge or self.set_bridge or self.add_addresses or self.enable_forwarding
        ) and (not self.detach)


def bridge_cidr(subnet: str) -> str:
    return f"{bridge_address(subnet)}/{ipaddress.ip_network(subnet).prefixlen}"


def plan(desired: NodeState, observed: NetObserved, mtu: int) -> NetPlan:
    """What to change so the bridge, its address, forwarding and attached containers match (pure)."""
    keep = {c.id for c in desired.containers} | set(observed.in_use)
    detach = tuple(sorted(set(observed.attached) - keep))
    return dataclasses.replace(plan_bridge(desired.subnet, observed, mtu), detach=detach)


def plan_bridge(subnet: str, observed: NetObserved, mtu: int) -> NetPlan:
    bridge = observed.bridge
    changes: dict[str, object] = {}
    if bridge is None or bridge.mtu != mtu:
        changes["mtu"] = mtu
    if bridge is None or not bridge.up:
        changes["state"] = "up"
    wanted = bridge_cidr(subnet)
    return NetPlan(
        create_bridge=bridge is None,
        set_bridge=changes,
        add_addresses=() if wanted in observed.bridge_addresses else (wanted,),
        enable_forwarding=not observed.forwarding,
    )


def short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


class NetworkReconciler:
    def __init__(self, config: NetConfig, subnet: str) -> None:
        self.config = config
        self.subnet = subnet
        self.netlink = Netlink(config.node_netns)
        self.ipam = Ipam(config.ipam_file, subnet)

    # ---- the node side ---------------------------------------------------------------------
    def observe(self, desired: NodeState | None = None) -> NetObserved:
        """The node side, and which attached containers still have a process in their netns.

        Only those `desired` no longer lists can be detached, so only their namespaces are
        looked for in /proc (a scan of every process: 5 ms on the path of each start).
        """
        node = self._observe_bridge()
        attached = sorted(self.ipam.allocations)
        wanted = {c.id for c in desired.containers} if desired is not None else set()
        suspects = [cid for cid in attached if cid not in wanted]
        busy = netns_in_use([self.netns_path(cid) for cid in suspects]) if suspects else set()
        in_use = tuple(cid for cid in suspects if self.netns_path(cid) in busy)
        return dataclasses.replace(node, attached=tuple(attached), in_use=in_use)

    def _observe_bridge(self) -> NetObserved:
        """The node side only: bridge, its addresses, forwarding (no /proc scan)."""
        bridge = self.netlink.link(self.config.bridge)
        addresses = tuple(self.netlink.addresses(bridge.index)) if bridge else ()
        forwarding = in_netns(self.config.node_netns, lambda: _forwarding_on(self.config.bridge))
        return NetObserved(bridge, addresses, forwarding, ())

    def apply(self, todo: NetPlan) -> None:
        if todo.create_bridge:
            self.netlink.add_bridge(self.config.bridge, self.config.mtu)
        if todo.set_bridge:
            self.netlink.set_link(self.config.bridge, **todo.set_bridge)
        for cidr in todo.add_addresses:
            self.netlink.add_address(self.config.bridge, cidr)
        if todo.enable_forwarding:
            write_sysctl(self.config.node_netns, FORWARD_SYSCTL, "1")
            write_sysctl(self.config.node_netns, LOCALNET_SYSCTL.format(bridge=self.config.bridge), "1")
        for container_id in todo.detach:
            self.detach(container_id)

    def reconcile(self, desired: NodeState) -> NetPlan:
        todo = plan(desired, self.observe(desired), self.config.mtu)
        if not todo.empty:
            self.apply(todo)
        return todo

    # ---- the container side ----------------------------------------------------------------
    def netns_path(self, container_id: str) -> Path:
        return self.config.netns_path(f"{self.config.netns_prefix}-{container_id}")

    def host_veth(self, container_id: str) -> str:
        return f"{self.config.veth_prefix}{short_hash(container_id)}"

    def files(self, container_id: str) -> Path:
        return self.config.files_dir / container_id

    def attach(self, container_id: str, ip: str | None = None, hostname: str = "") -> tuple[Path, str]:
        """The container's netns path and address; makes (or keeps) its veth, address and files."""
        prepared = self.prepare(container_id, ip, hostname)
        if prepared.plug is not None:
            prepared.plug()
        return prepared.netns, prepared.address

    def prepare(
        self,
        container_id: str,
        ip: str | None = None,
        hostname: str = "",
        extra_hosts: Mapping[str, str] | None = None,
        search: Sequence[str] = (),
        *,
        project: str = "",
    ) -> PreparedNetwork:
        """The first part of `attach`: address, netns and files (with Compose extra_hosts and
        dns_search), which a container needs to be created; what is left (the veth and the
        address inside) only before its process starts."""
        bridge = self._ensure_bridge()
        address = self.ipam.allocate(container_id, ip)
        path = self.netns_path(container_id)
        fresh = create_netns(path)
        gateway = bridge_address(self.subnet)
        name = hostname or container_id
        directory, domain = self.files(container_id), self.config.dns_domain
        write_container_files(
            directory, name, address, gateway, domain, extra_hosts=extra_hosts, search=search, project=project
        )
        if not fresh and self._attached(container_id, path, address):
            return PreparedNetwork(path, address, None)
        plug = functools.partial(self._plug, container_id, path, address, bridge, fresh)
        return PreparedNetwork(path, address, plug)

    def _ensure_bridge(self) -> int:
        """The bridge made right if it is not (someone deleted it, say); its index."""
        observed = self._observe_bridge()
        todo = plan_bridge(self.subnet, observed, self.config.mtu)
        if not todo.empty:
            self.apply(todo)
        if observed.bridge is None:
            return self.netlink.index(self.config.bridge)
        return observed.bridge.index

    def container_files(self, container_id: str) -> ContainerFiles:
        directory = self.files(container_id)
        return ContainerFiles(directory / "hosts", directory / "hostname", directory / "resolv.conf")

    def _attached(self, container_id: str, path: Path, address: str) -> bool:
        host = self.netlink.link(self.host_veth(container_id))
        if host is None or not host.up:
            return False
        prefix = ipaddress.ip_network(self.subnet).prefixlen

        def addressed(inside: Netlink) -> bool:
            eth0 = inside.link("eth0")
            return eth0 is not None and f"{address}/{prefix}" in inside.addresses(eth0.index)

        return in_own_netns(path, addressed)

    def _plug(self, container_id: str, path: Path, address: str, bridge: int, fresh: bool) -> None:
        """The veth made anew (what is left of an old one removed first, unless the netns is new)."""
        host = self.host_veth(container_id)
        if not fresh and self.netlink.link(host) is not None:
            self.netlink.delete_link(host)
        cidr = f"{address}/{ipaddress.ip_network(self.subnet).prefixlen}"
        if not fresh:
            self.netlink.writes += in_own_netns(path, _delete_eth0)
        self.netlink.add_veth(host, bridge, path, self.config.mtu)
        gateway, mtu = bridge_address(self.subnet), self.config.mtu

        def configure(inside: Netlink) -> int:
            configure_container_side(inside, cidr, gateway, mtu)
            return inside.writes

        self.netlink.writes += in_own_netns(path, configure)
        # a new veth is a new MAC: an address reused from a replica just gone would otherwise stay
        # mapped to the old one on the bridge (unreachable until the entry expires, up to ~45 s)
        self.netlink.forget_neighbour(bridge, address)

    def close(self) -> None:
        self.netlink.close()

    def detach(self, container_id: str) -> None:
        """Remove the container's veth, netns, address and files; missing pieces are fine."""
        host = self.host_veth(container_id)
        if self.netlink.link(host) is not None:
            self.netlink.delete_link(host)
        remove_netns(self.netns_path(container_id))
        self.ipam.release(container_id)
        shutil.rmtree(self.files(container_id), ignore_errors=True)


def _delete_eth0(inside: Netlink) -> int:
    if inside.link("eth0") is not None:
        inside.delete_link("eth0")
    return inside.writes


def _forwarding_on(bridge: str) -> bool:
    localnet = Path("/proc/sys") / LOCALNET_SYSCTL.format(bridge=bridge)
    if not localnet.exists() or localnet.read_text().strip() != "1":
        return False
    return (Path("/proc/sys") / FORWARD_SYSCTL).read_text().strip() == "1"

"""The node's WireGuard interface and its peers (agent step, after the container network).

`observe()` reads the device over the UAPI, the link and the cluster route; the pure `plan()`
lists only what differs: the key and port, peers to create, peers to update (`update_only`, just
the changed fields), peers to remove. Untouched peers are never mentioned, so their tunnels keep
their handshakes. A desired endpoint of None (the peer is behind NAT) never overwrites the
endpoint the peer roamed to. The cluster CIDR is routed into the tunnel with the bridge address
as preferred source: the node's overlay address is its bridge's, so the tunnel itself carries no
address (traffic the node sends into the mesh leaves from an address the peers' AllowedIPs accept).

On a NAT'd node the relayed subnets go on the relay the node picks itself (render.relays): each
pass and each `watch()` tick (every second, between passes) reads the peers' counters, and a relay
gone silent hands its subnets to the next live candidate, touching only those two peers.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from dataclasses import dataclass
from typing import Protocol

from shoal.agent.net.config import NetConfig
from shoal.agent.net.ipam import bridge_address
from shoal.agent.render.relays import Liveness, choose, current_relay, direct_alive, observe, routed_peers
from shoal.agent.sys.netlink import Link, Netlink, Route
from shoal.agent.sys.wireguard import (
    KernelWg,
    PeerUpdate,
    Uapi,
    WgDevice,
    WgPeer,
    WgSet,
    WireguardError,
    WireguardGo,
    kernel_module_loaded,
    load_private_key,
    public_key_of,
    resolve_endpoint,
)
from shoal.model.state import NodeState, Peer
from shoal.model.status import PeerStatus

log = logging.getLogger(__name__)


class WgBackend(Protocol):
    writes: int

    def get(self) -> WgDevice: ...
    def set(self, change: WgSet) -> None: ...


@dataclass(frozen=True)
class WgObserved:
    device: WgDevice
    link: Link | None
    route: Route | None


@dataclass(frozen=True)
class WgPlan:
    device: WgSet
    link: dict[str, object]  # mtu / state for the tunnel link
    route: tuple[str, str] | None  # (cluster cidr, preferred source) to (re)install

    @property
    def empty(self) -> bool:
        return self.device.empty and not self.link and self.route is None


def normal_cidrs(cidrs: list[str]) -> tuple[str, ...]:
    return tuple(sorted(str(ipaddress.ip_network(c, strict=False)) for c in cidrs))


def plan_peer(want: Peer, seen: WgPeer | None) -> PeerUpdate | None:
    allowed = normal_cidrs(want.allowed_ips or ([want.subnet] if want.subnet else []))
    if seen is None:
        return PeerUpdate(want.public_key, True, want.endpoint, want.keepalive_s, allowed)
    update = PeerUpdate(
        want.public_key,
        False,
        want.endpoint if want.endpoint and want.endpoint != seen.endpoint else None,
        want.keepalive_s if want.keepalive_s != seen.keepalive_s else None,
        allowed if allowed != seen.allowed_ips else None,
    )
    changed = (update.endpoint, update.keepalive_s, update.allowed_ips) != (None, None, None)
    return update if changed else None


def plan_device(private_key: str, port: int, peers: list[Peer], seen: WgDevice) -> WgSet:
    """The UAPI change that turns `seen` into the wanted device (pure, minimal)."""
    updates = [plan_peer(p, seen.peers.get(p.public_key)) for p in peers]
    wanted = {p.public_key for p in peers}
    return WgSet(
        private_key=private_key if private_key != seen.private_key else None,
        listen_port=port if port != seen.listen_port else None,
        peers=tuple(u for u in updates if u is not None),
        remove=tuple(sorted(k for k in seen.peers if k not in wanted)),
    )


def plan(desired: NodeState, private_key: str, config: NetConfig, observed: WgObserved) -> WgPlan:
    """Device, link and route changes; peers' endpoints must be resolved already (pure)."""
    link: dict[str, object] = {}
    if observed.link is None or observed.link.mtu != config.mtu:
        link["mtu"] = config.mtu
    if observed.link is None or not observed.link.up:
        link["state"] = "up"
    source = bridge_address(desired.subnet)
    oif = observed.link.index if observed.link else -1
    route_ok = observed.route is not None and (observed.route.oif, observed.route.prefsrc) == (oif, source)
    return WgPlan(
        device=plan_device(private_key, config.wg_port, desired.peers, observed.device),
        link=link,
        route=None if route_ok else (desired.cluster_cidr, source),
    )


class WireguardReconciler:
    """One WireGuard interface per node: the kernel's where its module is loaded, else wireguard-go."""

    def __init__(self, config: NetConfig, kernel: bool | None = None) -> None:
        self.config = config
        self.netlink = Netlink(config.node_netns)
        prefix = ("nsenter", f"--net={config.node_netns}") if config.node_netns else ()
        self.process = WireguardGo(
            config.wg_go_binary, config.wg_interface, config.wg_socket, config.run_dir, prefix
        )
        self.kernel = kernel_module_loaded() if kernel is None else kernel
        self.backend: WgBackend = (
            KernelWg(config.wg_interface, config.node_netns) if self.kernel else Uapi(config.wg_socket)
        )
        self.private_key = load_private_key(config.wg_key_file)
        self.relay = ""  # the relay this node routes the relayed subnets through ("" until known)
        self.direct: set[str] = set()  # relayed nodes reached over their own tunnel now
        self.lan_endpoint = ""  # a NAT'd node's address:port behind its NAT (for its status)
        self._relay_names: set[str] = set()
        self.liveness = Liveness()
        self.started = False  # the device exists (a watch tick before the first pass does nothing)

    @property
    def public_key(self) -> str:
        return public_key_of(self.private_key)

    def _ensure_interface(self) -> None:
        if not self.kernel:
            self.process.ensure()
        elif self.netlink.link(self.config.wg_interface) is None:
            self.netlink.add_link(self.config.wg_interface, "wireguard")

    @property
    def writes(self) -> int:
        return self.netlink.writes + self.backend.writes

    def observe(self, cluster_cidr: str) -> WgObserved:
        self._ensure_interface()
        link = self.netlink.link(self.config.wg_interface)
        routes = [r for r in self.netlink.routes() if r.dst == str(ipaddress.ip_network(cluster_cidr))]
        return WgObserved(self.backend.get(), link, routes[0] if routes else None)

    def apply(self, todo: WgPlan) -> None:
        if todo.link:  # up first: wireguard-go sends a peer's first keepalive only on an up device
            self.netlink.set_link(self.config.wg_interface, **todo.link)
        if not todo.device.empty:
            self.backend.set(todo.device)
        if todo.route is not None:
            index = self.netlink.index(self.config.wg_interface)
            self.netlink.replace_route(todo.route[0], index, prefsrc=todo.route[1])

    def reconcile(self, desired: NodeState) -> WgPlan:
        observed = self.observe(desired.cluster_cidr)
        self.started = True
        self._pick_relay(desired, observed.device)
        peers = [_resolved(p) for p in routed_peers(desired, self.relay, self.direct)]
        todo = plan(desired.model_copy(update={"peers": peers}), self.private_key, self.config, observed)
        if not todo.empty:
            self.apply(todo)
        self.lan_endpoint = self._lan_endpoint(peers) if desired.relays else ""
        return todo

    def _lan_endpoint(self, peers: list[Peer]) -> str:
        """The address the node sends from towards its public peers, with the WireGuard port."""
        public = [p.endpoint for p in peers if p.endpoint and p.name in self._relay_names]
        source = self.netlink.source_for(public[0].rpartition(":")[0].strip("[]")) if public else None
        return f"{source}:{self.config.wg_port}" if source else ""

    def watch(self, desired: NodeState) -> bool:
        """Between passes: one read of the device; a pass when the relay must change (True)."""
        if not self.started or not desired.relays:
            return False
        before = (self.relay, set(self.direct))
        self._pick_relay(desired, self.backend.get())
        if (self.relay, self.direct) == before:
            return False
        self.reconcile(desired)
        return True

    def _pick_relay(self, desired: NodeState, device: WgDevice) -> None:
        names = {p.public_key: p.name for p in [*desired.peers, *desired.relayed]}
        seen = {names[k]: p for k, p in device.peers.items() if k in names}
        now = time.monotonic()
        self.liveness = observe(self.liveness, {n: p.rx_bytes for n, p in seen.items()}, now)
        current = self.relay or current_relay(desired, {n: p.allowed_ips for n, p in seen.items()})
        chosen = choose(current, desired.relays, self.liveness, now)
        if chosen != self.relay and self.relay:
            log.warning("relay %s is silent: NAT'd peers now go through %s", self.relay, chosen)
        direct = direct_alive(desired, self.liveness, now)
        if direct != self.direct:
            log.info("direct tunnels to %s; relayed: the other NAT'd nodes", sorted(direct) or "none")
        self.relay, self.direct = chosen, direct
        self._relay_names = set(desired.relays)

    def peer_status(
        self, names: dict[str, str] | None = None, relayed: list[Peer] | None = None
    ) -> list[PeerStatus]:
        """Per peer: endpoint, latest handshake, bytes in/out (for the status report); the nodes
        reached through the relay are listed after the tunnels, with the relay they go through."""
        names = names or {}
        through = [p for p in relayed or [] if p.name not in self.direct]
        trying = {p.public_key for p in through}  # a tunnel tried but not alive carries nothing
        return [s for s in self._tunnel_status(names) if s.public_key not in trying] + [
            PeerStatus(public_key=p.public_key, name=p.name, path="relayed", via=self.relay) for p in through
        ]

    def _tunnel_status(self, names: dict[str, str]) -> list[PeerStatus]:
        return [
            PeerStatus(
                public_key=p.public_key,
                name=names.get(p.public_key, ""),
                endpoint=p.endpoint,
                latest_handshake=p.last_handshake or None,
                rx_bytes=p.rx_bytes,
                tx_bytes=p.tx_bytes,
            )
            for p in self.backend.get().peers.values()
        ]

    def stop(self) -> None:
        """End the wireguard-go this agent started (tests, `shoal node rm`); close the netlink socket."""
        if not self.kernel:
            self.process.stop()
        self.netlink.close()


def _resolved(peer: Peer) -> Peer:
    """The peer with its endpoint as an address; an endpoint that does not resolve is left alone."""
    if not peer.endpoint:
        return peer
    try:
        endpoint: str | None = resolve_endpoint(peer.endpoint)
    except WireguardError as exc:
        log.warning("%s; keeping the endpoint of peer %s as it is", exc, peer.name)
        endpoint = None
    return peer.model_copy(update={"endpoint": endpoint})

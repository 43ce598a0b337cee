"""Links, addresses, routes and namespaces through pyroute2 (agent/sys).

A thin wrapper used by the network and WireGuard reconcilers. Reads return plain values parsed
from pyroute2's message dumps by pure functions (unit-tested on captured dumps); every write goes
through `_write`, which counts it, so a run with nothing to change is observably write-free.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pyroute2 import netns  # the submodule, not the package facade (see agent.memory)
from pyroute2.iproute.linux import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from shoal.agent.net.nsthread import in_netns, on_thread
from shoal.errors import ShoalError

IFF_UP = 1
CLONE_NEWNET = 0x40000000  # <sched.h>
LOOPBACK_INDEX = 1  # lo is the first link of every netns
Dump = Mapping[str, Any]
T = TypeVar("T")


class NetlinkFailure(ShoalError):
    """A netlink request failed; the message names the request and the object."""


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    kind: str
    mtu: int
    up: bool
    master: int  # 0 when not enslaved


@dataclass(frozen=True)
class Route:
    dst: str  # "10.210.0.0/16", "default"
    oif: int
    prefsrc: str | None
    gateway: str | None


def attr(dump: Dump, name: str) -> Any:
    for key, value in dump.get("attrs", []):
        if key == name:
            return value
    return None


def parse_link(dump: Dump) -> Link:
    info = attr(dump, "IFLA_LINKINFO") or {}
    return Link(
        index=int(dump["index"]),
        name=str(attr(dump, "IFLA_IFNAME")),
        kind=str(attr(info, "IFLA_INFO_KIND") or ""),
        mtu=int(attr(dump, "IFLA_MTU") or 0),
        up=bool(int(dump.get("flags", 0)) & IFF_UP),
        master=int(attr(dump, "IFLA_MASTER") or 0),
    )


LINK_ATTRS = ("IFLA_IFNAME", "IFLA_MTU", "IFLA_MASTER")
ADDRESS_ATTRS = ("IFA_ADDRESS",)
ROUTE_ATTRS = ("RTA_DST", "RTA_OIF", "RTA_PREFSRC", "RTA_GATEWAY")


def decoded(msg: Any, header: tuple[str, ...], names: tuple[str, ...]) -> dict[str, Any]:
    """What a parser reads of a pyroute2 message, in the shape of its `dump()`.

    pyroute2 decodes an attribute when it is read: `dump()` reads them all, which for a bridge
    (dozens of IFLA_BR_*, its statistics) costs three times the netlink request itself.
    """
    doc: dict[str, Any] = {key: msg[key] for key in header}
    doc["attrs"] = [(name, value) for name in names if (value := msg.get(name)) is not None]
    return doc


def link_fields(msg: Any) -> Dump:
    doc = decoded(msg, ("index", "flags"), LINK_ATTRS)
    kind = msg.get(("IFLA_LINKINFO", "IFLA_INFO_KIND"))
    if kind is not None:
        doc["attrs"].append(("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", kind)]}))
    return doc


def parse_address(dump: Dump) -> str:
    return f"{attr(dump, 'IFA_ADDRESS')}/{dump['prefixlen']}"


def parse_route(dump: Dump) -> Route:
    dst = attr(dump, "RTA_DST")
    return Route(
        dst=f"{dst}/{dump['dst_len']}" if dst else "default",
        oif=int(attr(dump, "RTA_OIF") or 0),
        prefsrc=attr(dump, "RTA_PREFSRC"),
        gateway=attr(dump, "RTA_GATEWAY"),
    )


def create_netns(path: Path) -> bool:
    """Create a named netns at `path` (any dir); False when it exists already.

    A thread of ours unshares its netns and binds it at `path` (as `ip netns add` does in its
    own process); pyroute2's `netns.create` forks the agent for that, about 8 ms against 1 ms.
    """
    if path.exists():
        return False
    on_thread(lambda: _bind_new_netns(path), f"netns-add:{path.name}")
    return True


def _bind_new_netns(path: Path) -> None:
    """On a thread of its own, which ends right after: a new netns for it, bound at `path`."""
    if _libc().unshare(CLONE_NEWNET) != 0:
        raise NetlinkFailure(f"netns {path}: unshare: {os.strerror(ctypes.get_errno())}")
    # pyroute2's attach makes the dir a shared mount (as iproute2 does), then binds the netns
    netns.attach(str(path), "thread-self")


def in_own_netns(path: Path, fn: Callable[[Netlink], T]) -> T:
    """fn(netlink) with a netlink socket opened inside the netns at `path`, on a thread set there.

    Opening it from here (`IPRoute(netns=...)`) forks a helper: about 10 ms against 1 ms.
    """

    def run() -> T:
        with contextlib.closing(Netlink()) as inside:
            return fn(inside)

    return in_netns(path, run)


@functools.cache
def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def netns_in_use(paths: list[Path]) -> set[Path]:
    """The namespaces among `paths` that some process still lives in (a /proc scan)."""
    wanted = {}
    for path in paths:
        with contextlib.suppress(OSError):
            info = path.stat()
            wanted[(info.st_dev, info.st_ino)] = path
    busy: set[Path] = set()
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            info = (proc / "ns" / "net").stat()
            if (info.st_dev, info.st_ino) in wanted:
                busy.add(wanted[(info.st_dev, info.st_ino)])
    return busy


def remove_netns(path: Path) -> None:
    if path.exists():
        netns.remove(str(path))


class Netlink:
    """rtnetlink in one namespace (None: the agent's own)."""

    def __init__(self, namespace: Path | None = None) -> None:
        self.namespace = namespace
        self.writes = 0
        self._socket: Any = None

    @contextlib.contextmanager
    def _ipr(self) -> Iterator[Any]:
        """One socket kept open (opening one in another netns forks a helper: slow)."""
        if self._socket is None:
            self._socket = IPRoute(netns=str(self.namespace), flags=0) if self.namespace else IPRoute()
        try:
            yield self._socket
        except OSError:
            self.close()  # e.g. the netns went away: reopen next time
            raise

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _write(self, what: str, call: str, *args: Any, **kwargs: Any) -> None:
        self.writes += 1
        with self._ipr() as ipr:
            try:
                getattr(ipr, call)(*args, **kwargs)
            except NetlinkError as exc:
                raise NetlinkFailure(f"netlink: {what}: {exc.args[-1]}") from exc

    # ---- reads -----------------------------------------------------------------------------
    def links(self) -> dict[str, Link]:
        with self._ipr() as ipr:
            parsed = [parse_link(link_fields(m)) for m in ipr.link("dump")]
        return {link.name: link for link in parsed}

    def link(self, name: str) -> Link | None:
        """One link by name (a single request: cheaper than `links()` on a node with many veths)."""
        with self._ipr() as ipr:
            try:
                found = ipr.link("get", ifname=name)
            except NetlinkError as exc:
                if exc.code == errno.ENODEV:
                    return None
                raise NetlinkFailure(f"netlink: get link {name}: {exc.args[-1]}") from exc
        return next((parse_link(link_fields(m)) for m in found), None)

    def addresses(self, index: int) -> list[str]:
        with self._ipr() as ipr:
            found = ipr.addr("dump", index=index, family=2)
            return sorted(parse_address(decoded(m, ("prefixlen",), ADDRESS_ATTRS)) for m in found)

    def routes(self) -> list[Route]:
        with self._ipr() as ipr:
            found = ipr.route("dump", family=2, table=254)
            return [parse_route(decoded(m, ("dst_len",), ROUTE_ATTRS)) for m in found]

    def source_for(self, address: str) -> str | None:
        """The address this netns sends from towards `address` (`ip route get`)."""
        with self._ipr() as ipr:
            found = ipr.route("get", dst=address)
            routes = [parse_route(decoded(m, ("dst_len",), ROUTE_ATTRS)) for m in found]
        return routes[0].prefsrc if routes else None

    # ---- writes ----------------------------------------------------------------------------
    def add_link(self, name: str, kind: str) -> None:
        self._write(f"add {kind} {name}", "link", "add", ifname=name, kind=kind)

    def add_bridge(self, name: str, mtu: int) -> None:
        self._write(f"add bridge {name}", "link", "add", ifname=name, kind="bridge", mtu=mtu)

    def index(self, name: str) -> int:
        """The index of link `name`, which must exist (one request, not a dump)."""
        found = self.link(name)
        if found is None:
            raise NetlinkFailure(f"netlink: no link {name}")
        return found.index

    def set_link(self, name: str, **values: Any) -> None:
        self.set_link_at(self.index(name), **values)

    def set_link_at(self, index: int, **values: Any) -> None:
        self._write(f"set link {index} {values}", "link", "set", index=index, **values)

    def add_address(self, name: str, cidr: str) -> None:
        self.add_address_at(self.index(name), cidr)

    def add_address_at(self, index: int, cidr: str) -> None:
        address, prefix = cidr.split("/")
        self._write(
            f"add {cidr} on link {index}", "addr", "add", index=index, address=address, prefixlen=int(prefix)
        )

    def replace_route(
        self, dst: str, oif: int, prefsrc: str | None = None, gateway: str | None = None
    ) -> None:
        extra = {k: v for k, v in (("prefsrc", prefsrc), ("gateway", gateway)) if v}
        self._write(f"route {dst}", "route", "replace", dst=dst, oif=oif, **extra)

    def add_veth(self, host: str, master: int, peer_netns: Path, mtu: int) -> None:
        """A veth pair in one request: `host` here, enslaved to the bridge `master` and up, its
        peer created as eth0 right inside `peer_netns` (no rename, no move); then hairpin mode.

        Hairpin lets a container reach a published port of its own node when br_netfilter
        DNATs the frame back to the port it came from (Docker does the same).
        """
        peer = {"ifname": "eth0", "net_ns_fd": str(peer_netns)}
        self._write(
            f"add veth {host}", "link", "add", ifname=host, kind="veth", peer=peer, mtu=mtu,
            master=master, state="up",
        )  # fmt: skip
        self._write(f"hairpin on {host}", "brport", "set", index=self.index(host), mode=1)

    def delete_link(self, name: str) -> None:
        self._write(f"delete {name}", "link", "del", index=self.index(name))

    def forget_neighbour(self, index: int, address: str) -> None:
        """Drop the ARP entry for `address` on link `index`; none there is fine."""
        self.writes += 1
        with self._ipr() as ipr:
            try:
                ipr.neigh("del", dst=address, ifindex=index)
            except NetlinkError as exc:
                if exc.code != errno.ENOENT:
                    raise NetlinkFailure(f"netlink: forget neighbour {address}: {exc.args[-1]}") from exc


def configure_container_side(ns: Netlink, cidr: str, gateway: str, mtu: int) -> None:
    """Inside a container's netns: eth0 addressed and up at `mtu`, lo up, the default route."""
    eth0 = ns.index("eth0")
    ns.set_link_at(eth0, mtu=mtu, state="up")
    ns.add_address_at(eth0, cidr)
    ns.set_link_at(LOOPBACK_INDEX, state="up")
    ns.replace_route("default", eth0, gateway=gateway)

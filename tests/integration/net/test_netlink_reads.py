"""Netlink reads decode only the attributes their parsers use (agent/sys/netlink).

`Netlink.link/links/addresses/routes` build each parser's input from the attributes it reads
(`link_fields`, `decoded`), not from a whole `dump()`; on real links of every kind the agent
meets (bridge, enslaved veth, loopback) both must parse to the same values.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shoal.agent.sys.netlink import (
    ADDRESS_ATTRS,
    ROUTE_ATTRS,
    Netlink,
    create_netns,
    decoded,
    in_own_netns,
    link_fields,
    parse_address,
    parse_link,
    parse_route,
    remove_netns,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def netns() -> Iterator[Path]:
    """A netns with a bridge (addressed, up), a veth pair with one end enslaved, and a route."""
    base = Path(tempfile.mkdtemp(prefix="sbx-nlreads-"))
    path = base / "ns"
    try:
        create_netns(path)
        for args in (
            ["link", "add", "br9", "mtu", "1420", "type", "bridge"],
            ["link", "set", "br9", "up"],
            ["addr", "add", "10.99.0.1/24", "dev", "br9"],
            ["link", "add", "v1", "mtu", "1420", "type", "veth", "peer", "name", "v2", "mtu", "1420"],
            ["link", "set", "v1", "master", "br9", "up"],
            ["route", "add", "10.98.0.0/16", "via", "10.99.0.2", "dev", "br9"],
        ):
            subprocess.run(["nsenter", f"--net={path}", "ip", *args], check=True, capture_output=True)
        yield path
    finally:
        remove_netns(path)
        subprocess.run(["umount", str(base)], capture_output=True, check=False)  # the shared-mount bind
        shutil.rmtree(base, ignore_errors=True)


def both_ways(path: Path, read: Any) -> tuple[Any, Any]:
    """(parsed from the few attributes, parsed from the whole dump) of the same messages."""

    def run(inside: Netlink) -> tuple[Any, Any]:
        with inside._ipr() as ipr:
            slim, whole = read(ipr)
        return slim, whole

    return in_own_netns(path, run)


def test_links_parse_the_same_from_their_few_attributes(netns: Path) -> None:
    def read(ipr: Any) -> tuple[Any, Any]:
        messages = list(ipr.link("dump"))
        return [parse_link(link_fields(m)) for m in messages], [parse_link(m.dump()) for m in messages]

    slim, whole = both_ways(netns, read)
    assert slim == whole
    kinds = {link.name: link.kind for link in slim}
    assert kinds["br9"] == "bridge" and kinds["v1"] == "veth" and kinds["lo"] == ""
    by_name = {link.name: link for link in slim}
    assert by_name["v1"].master == by_name["br9"].index and by_name["br9"].mtu == 1420
    assert by_name["br9"].up and not by_name["v2"].up


def test_addresses_and_routes_parse_the_same_from_their_few_attributes(netns: Path) -> None:
    def read(ipr: Any) -> tuple[Any, Any]:
        addrs = list(ipr.addr("dump", family=2))
        routes = list(ipr.route("dump", family=2, table=254))
        slim = (
            [parse_address(decoded(m, ("prefixlen",), ADDRESS_ATTRS)) for m in addrs],
            [parse_route(decoded(m, ("dst_len",), ROUTE_ATTRS)) for m in routes],
        )
        return slim, ([parse_address(m.dump()) for m in addrs], [parse_route(m.dump()) for m in routes])

    slim, whole = both_ways(netns, read)
    assert slim == whole
    assert "10.99.0.1/24" in slim[0]
    gateways = {route.dst: route.gateway for route in slim[1]}
    assert gateways == {"10.99.0.0/24": None, "10.98.0.0/16": "10.99.0.2"}


def test_netlink_reads_use_them(netns: Path) -> None:
    def read(inside: Netlink) -> tuple[Any, ...]:
        bridge = inside.link("br9")
        assert bridge is not None
        return bridge, inside.links()["v1"], inside.addresses(bridge.index), inside.routes()

    bridge, veth, addresses, routes = in_own_netns(netns, read)
    assert (bridge.kind, bridge.mtu, bridge.up) == ("bridge", 1420, True)
    assert veth.master == bridge.index
    assert addresses == ["10.99.0.1/24"]
    assert {r.dst for r in routes} == {"10.99.0.0/24", "10.98.0.0/16"}

"""The DNS server over real UDP and TCP sockets in a throwaway netns, with a real upstream.

The upstream is a second DnsServer that owns `example.test`; a silent upstream is a bound UDP
socket that never answers.
"""

from __future__ import annotations

import socket
import struct
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from dnslib import RCODE, DNSRecord

from shoal.agent.dns import DnsServer
from shoal.agent.dns.server import DnsError
from shoal.agent.net.nsthread import in_netns


@pytest.fixture
def ns() -> Iterator[Path]:
    name = f"shn-dns-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield Path("/run/netns") / name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.fixture
def servers(ns: Path) -> Iterator[tuple[DnsServer, DnsServer, socket.socket]]:
    upstream = DnsServer("127.0.0.1", 0, domain="example.test", namespace=ns)
    silent = in_netns(ns, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    in_netns(ns, lambda: silent.bind(("127.0.0.1", 0)))
    started: list[DnsServer] = []
    try:
        upstream.start()
        started.append(upstream)
        upstream.update({"www.example.test": ("192.0.2.80",)})
        ups = [f"127.0.0.1:{silent.getsockname()[1]}", f"127.0.0.1:{upstream.port}"]
        server = DnsServer(
            "127.0.0.1", 0, domain="shoal.internal", upstreams=ups, timeout_s=0.5, namespace=ns
        )
        server.start()
        started.append(server)
        server.update({"web.shoal.internal": ("10.210.1.2", "10.210.2.2")})
        yield server, upstream, silent
    finally:
        for s in started:
            s.stop()
        silent.close()


def _ask(ns: Path, port: int, name: str, tcp: bool = False) -> DNSRecord:
    query = DNSRecord.question(name, "A")
    return DNSRecord.parse(in_netns(ns, lambda: query.send("127.0.0.1", port, tcp=tcp, timeout=5)))


def _addresses(reply: DNSRecord) -> list[str]:
    return sorted(str(rr.rdata) for rr in reply.rr)


def test_cluster_names_over_udp_and_tcp(
    ns: Path, servers: tuple[DnsServer, DnsServer, socket.socket]
) -> None:
    server = servers[0]
    for tcp in (False, True):
        assert _addresses(_ask(ns, server.port, "web.shoal.internal", tcp)) == ["10.210.1.2", "10.210.2.2"]
    assert _ask(ns, server.port, "nope.shoal.internal").header.rcode == RCODE.NXDOMAIN


def test_records_are_swapped_live(ns: Path, servers: tuple[DnsServer, DnsServer, socket.socket]) -> None:
    server = servers[0]
    server.update({"db.shoal.internal": ("10.210.3.7",)})
    assert _addresses(_ask(ns, server.port, "db.shoal.internal")) == ["10.210.3.7"]
    assert _ask(ns, server.port, "web.shoal.internal").header.rcode == RCODE.NXDOMAIN


def test_other_names_are_forwarded_past_a_silent_upstream(
    ns: Path, servers: tuple[DnsServer, DnsServer, socket.socket]
) -> None:
    server = servers[0]
    for tcp in (False, True):
        assert _addresses(_ask(ns, server.port, "www.example.test", tcp)) == ["192.0.2.80"]


def test_upstream_failure_is_servfail_not_a_hang(
    ns: Path, servers: tuple[DnsServer, DnsServer, socket.socket]
) -> None:
    _, upstream, silent = servers
    lonely = DnsServer(
        "127.0.0.1",
        0,
        domain="shoal.internal",
        upstreams=[f"127.0.0.1:{silent.getsockname()[1]}"],
        timeout_s=0.5,
        namespace=ns,
    )
    lonely.start()
    try:
        began = time.monotonic()
        reply = _ask(ns, lonely.port, "www.example.test")
        assert reply.header.rcode == RCODE.SERVFAIL and time.monotonic() - began < 2
    finally:
        lonely.stop()
    assert upstream.port != lonely.port


def test_unbindable_address_is_a_one_line_error(ns: Path) -> None:
    with pytest.raises(DnsError, match=r"^DNS server cannot listen on 10\.9\.9\.9:0: "):
        DnsServer("10.9.9.9", 0, domain="shoal.internal", namespace=ns).start()


def test_idle_tcp_connections_starve_neither_udp_nor_tcp(
    ns: Path, servers: tuple[DnsServer, DnsServer, socket.socket]
) -> None:
    """Twenty TCP connections that never send a query: UDP answers at once; the TCP pool closes
    what it cannot take, and a TCP client asking again is answered once the idle ones' deadline
    (timeout_s, 0.5 s here) has cut them."""
    server = servers[0]
    idle = [in_netns(ns, lambda: socket.create_connection(("127.0.0.1", server.port))) for _ in range(20)]
    try:
        started = time.monotonic()
        assert _addresses(_ask(ns, server.port, "web.shoal.internal")) == ["10.210.1.2", "10.210.2.2"]
        assert time.monotonic() - started < 0.5
        while True:
            try:
                over_tcp = _ask(ns, server.port, "web.shoal.internal", tcp=True)
                break
            except (OSError, struct.error):  # closed by the full pool: ask again
                assert time.monotonic() - started < 3
                time.sleep(0.1)
        assert _addresses(over_tcp) == ["10.210.1.2", "10.210.2.2"]
    finally:
        for sock in idle:
            sock.close()


def test_a_tcp_client_trickling_its_query_is_cut_at_the_deadline(
    ns: Path, servers: tuple[DnsServer, DnsServer, socket.socket]
) -> None:
    server = servers[0]
    slow = in_netns(ns, lambda: socket.create_connection(("127.0.0.1", server.port)))
    try:
        slow.settimeout(5)
        started = time.monotonic()
        slow.sendall(b"\x00")  # half of the length prefix, then nothing
        assert slow.recv(10) == b""  # closed by the server
        assert time.monotonic() - started < 2  # timeout_s is 0.5 in all, not per byte
    finally:
        slow.close()

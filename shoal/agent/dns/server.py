"""The node's DNS server: UDP and TCP on the bridge address, threads in the agent (agent/dns).

Cluster names are answered from a record set swapped whole by `update()` (the DNS reconciler
calls it on each node state); other names go to the configured upstreams with a timeout, and a
failed upstream gives SERVFAIL, never a hang. A query from a container whose Compose file sets
`dns` goes to that container's servers instead (Docker's behaviour: its resolv.conf still names
this server, so cluster names keep resolving); the server tells containers apart by source
address, given with the records. dnslib parses and builds the messages. Every thread
of the server runs in the node's netns (setns on the thread), so its sockets and its upstream
queries live there while the agent's other threads do not move. UDP and TCP have pools of their
own, each bounded (agent/bounded.py): a datagram that finds its pool full is dropped (the client
asks again), a TCP connection is closed, and a TCP client has `timeout_s` in all to send its
query, so idle TCP connections can neither queue without end nor starve UDP.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from dnslib import DNSError, DNSRecord
from pyroute2 import netns  # the submodule (see agent.memory)

from shoal.agent.bounded import BoundedPool
from shoal.agent.dns.answer import Records, answer_local, servfail
from shoal.agent.net.nsthread import in_netns
from shoal.errors import ShoalError

log = logging.getLogger(__name__)
UDP_WORKERS, UDP_QUEUED = 8, 64
TCP_WORKERS, TCP_QUEUED = 4, 4


class DnsError(ShoalError):
    """The DNS server could not bind its address."""


def split_upstream(upstream: str) -> tuple[str, int]:
    """("host", port) from "ip", "ip:port" or "[v6]:port"; port 53 when none is given."""
    if upstream.startswith("["):
        host, _, port = upstream[1:].partition("]:")
        return host, int(port or 53)
    if upstream.count(":") == 1:
        host, port = upstream.split(":")
        return host, int(port)
    return upstream, 53


class DnsServer:
    def __init__(
        self,
        listen: str,
        port: int,
        *,
        domain: str,
        upstreams: Sequence[str] = (),
        timeout_s: float = 2.0,
        namespace: Path | None = None,
    ) -> None:
        self.listen, self.port, self.domain = listen, port, domain
        self.upstreams = [split_upstream(u) for u in upstreams]
        self.timeout_s = timeout_s
        self.namespace = namespace
        self.records: Records = {}
        self.forwarders: Mapping[str, tuple[tuple[str, int], ...]] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._udp: socket.socket | None = None
        self._tcp: socket.socket | None = None
        self._udp_pool: BoundedPool | None = None
        self._tcp_pool: BoundedPool | None = None

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        try:
            self._udp, self._tcp = in_netns(self.namespace, self._bind)
        except OSError as exc:
            raise DnsError(f"DNS server cannot listen on {self.listen}:{self.port}: {exc.strerror}") from exc
        self.port = self._udp.getsockname()[1]
        self._udp_pool = BoundedPool(UDP_WORKERS, UDP_QUEUED, "dns-udp", initializer=self._enter_netns)
        self._tcp_pool = BoundedPool(TCP_WORKERS, TCP_QUEUED, "dns-tcp", initializer=self._enter_netns)
        for name, loop in (("dns-udp", self._serve_udp), ("dns-tcp", self._serve_tcp)):
            thread = threading.Thread(target=loop, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def _bind(self) -> tuple[socket.socket, socket.socket]:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            udp.bind((self.listen, self.port))
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind((self.listen, udp.getsockname()[1]))
            tcp.listen(64)
        except OSError:
            udp.close()
            tcp.close()
            raise
        for sock in (udp, tcp):
            sock.settimeout(0.2)
        return udp, tcp

    def _enter_netns(self) -> None:
        if self.namespace is not None:
            netns.setns(str(self.namespace), flags=0)

    def update(self, records: Records, forwarders: Mapping[str, Sequence[str]] | None = None) -> None:
        """Swap the whole record set and the per-client upstreams (client address -> "ip[:port]"
        servers); each is one reference assignment, so readers see old or new."""
        self.forwarders = {
            client: tuple(split_upstream(u) for u in ups) for client, ups in (forwarders or {}).items()
        }
        self.records = dict(records)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        for sock in (self._udp, self._tcp):
            if sock is not None:
                sock.close()
        for pool in (self._udp_pool, self._tcp_pool):
            if pool is not None:
                pool.shutdown(wait=True)

    # ---- serving ---------------------------------------------------------------------------
    def _serve_udp(self) -> None:
        assert self._udp is not None and self._udp_pool is not None
        while not self._stop.is_set():
            try:
                data, peer = self._udp.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            self._udp_pool.submit(self._reply_udp, data, peer)  # full: dropped, the client retries

    def _reply_udp(self, data: bytes, peer: tuple[str, int]) -> None:
        reply = self.resolve(data, tcp=False, client=peer[0])
        if reply is not None and self._udp is not None:
            with contextlib.suppress(OSError):
                self._udp.sendto(reply, peer)

    def _serve_tcp(self) -> None:
        assert self._tcp is not None and self._tcp_pool is not None
        while not self._stop.is_set():
            try:
                conn, peer = self._tcp.accept()
            except (TimeoutError, OSError):
                continue
            if not self._tcp_pool.submit(self._reply_tcp, conn, peer[0]):
                conn.close()

    def _reply_tcp(self, conn: socket.socket, client: str) -> None:
        deadline = time.monotonic() + self.timeout_s
        with conn, contextlib.suppress(OSError, struct.error):
            (length,) = struct.unpack("!H", _recv_exact(conn, 2, deadline))
            reply = self.resolve(_recv_exact(conn, length, deadline), tcp=True, client=client)
            if reply is not None:
                conn.settimeout(max(deadline - time.monotonic(), 0.1))
                conn.sendall(struct.pack("!H", len(reply)) + reply)

    # ---- answering -------------------------------------------------------------------------
    def resolve(self, data: bytes, tcp: bool, client: str = "") -> bytes | None:
        """The reply bytes for one query from `client`; None for a packet that is not a DNS query."""
        try:
            query = DNSRecord.parse(data)
        except (DNSError, IndexError, struct.error):
            return None
        local = answer_local(query, self.records, self.domain)
        if local is not None:
            return bytes(local.pack())
        return self._forward(query, tcp, self.forwarders.get(client) or self.upstreams)

    def _forward(self, query: DNSRecord, tcp: bool, upstreams: Sequence[tuple[str, int]]) -> bytes:
        for host, port in upstreams:
            try:
                answer: bytes = query.send(host, port, tcp=tcp, timeout=self.timeout_s)
            except (OSError, DNSError, struct.error) as exc:
                log.debug("upstream %s:%s failed: %s", host, port, exc)
                continue
            return answer
        return bytes(servfail(query).pack())


def _recv_exact(conn: socket.socket, size: int, deadline: float) -> bytes:
    """`size` bytes, all of them before `deadline` (a client trickling bytes gets no longer)."""
    data = b""
    while len(data) < size:
        left = deadline - time.monotonic()
        if left <= 0:
            raise OSError("client too slow")
        conn.settimeout(left)
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise OSError("connection closed")
        data += chunk
    return data


__all__: list[str] = ["DnsServer"]

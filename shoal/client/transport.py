"""HTTP under the client: one httpx session to the API over HTTPS verified against the cluster CA.

Every failure becomes a one-line `shoal.client.errors` exception: no answer at all → Unreachable
("cannot reach server at URL: ..."), an error status → ApiError carrying the server's `error` line.

Several servers: every answer names the cluster's server URLs (header `X-Shoal-Servers`); the
transport keeps them (and tells its owner, who saves them) and, when a server cannot be reached,
tries the next one with the same CA. A request is sent again elsewhere only when it never left
(the connection failed) or when it is safe to repeat (GET, HEAD, PUT, DELETE): a POST that may
have reached a server is never repeated.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from shoal.client.errors import ApiError, Unreachable, for_status
from shoal.errors import ConfigError, first_line

API_PREFIX = "/api/v1"
DEFAULT_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 10.0  # a server machine that is gone: the next one is tried after this
SERVERS_HEADER = "X-Shoal-Servers"
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
OnServers = Callable[[list[str]], None]


def server_root(url: str) -> str:
    """The server's root URL as a person may write it: no trailing slash, no /api/v1."""
    root = url.strip().rstrip("/")
    root = root.removesuffix(API_PREFIX).rstrip("/")
    return root if "://" in root else f"https://{root}"


def tls_context(ca: Path | None) -> ssl.SSLContext:
    """Verify against the pinned cluster CA when given, else the system's trust store."""
    if ca is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=str(ca))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"CA certificate {ca}: {getattr(exc, 'strerror', None) or first_line(exc)}"
        ) from exc


def error_message(response: httpx.Response) -> str:
    """The server's one-line `error` field, else the first line of the body, else the status."""
    try:
        data = response.json()
    except ValueError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, str):
        return error
    text = response.text.strip().splitlines()
    if front_only(response) and not text:
        return f"the server's API process is not answering (HTTP {response.status_code} from its front door)"
    return text[0][:300] if text else f"HTTP {response.status_code} {response.reason_phrase}"


def unreachable(root: str, exc: httpx.HTTPError) -> Unreachable:
    """A one-line reason for a request that got no HTTP answer."""
    reason = first_line(exc)
    if "CERTIFICATE_VERIFY_FAILED" in reason:
        return Unreachable(
            f"cannot reach server at {root}: TLS certificate not trusted ({reason}); "
            "log in with --ca FILE or set SHOAL_CACERT"
        )
    if isinstance(exc, httpx.TimeoutException):
        return Unreachable(f"cannot reach server at {root}: timed out ({reason})")
    return Unreachable(f"cannot reach server at {root}: {reason}")


def connect_timeout(total: float) -> httpx.Timeout:
    """`total` for every phase but connecting: a server that is gone costs at most CONNECT_TIMEOUT_S."""
    return httpx.Timeout(total, connect=min(total, CONNECT_TIMEOUT_S))


def parse_servers(value: str) -> list[str]:
    """The URLs of a `X-Shoal-Servers` header (comma-separated), as roots."""
    return [server_root(u) for u in value.split(",") if u.strip().startswith("https://")]


def front_only(response: httpx.Response) -> bool:
    """An answer of the server's front door alone (Caddy's 502/503/504, no shoal error in it):
    the server process behind it is gone, as if the connection had been refused."""
    if response.status_code not in (502, 503, 504) or SERVERS_HEADER in response.headers:
        return False
    with contextlib.suppress(ValueError):
        return not (isinstance(data := response.json(), dict) and "error" in data)
    return True


def may_resend(method: str, exc: httpx.HTTPError) -> bool:
    """Whether a request that failed with `exc` may go to another server."""
    never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    return never_sent or (method.upper() in IDEMPOTENT and isinstance(exc, httpx.TransportError))


class Transport:
    """An authenticated session to a server's /api/v1, failing over to the cluster's others."""

    def __init__(
        self,
        server: str,
        token: str | None,
        ca: Path | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        *,
        servers: list[str] | tuple[str, ...] = (),
        on_servers: OnServers | None = None,
    ) -> None:
        self.root = server_root(server)
        self.servers = [self.root, *(r for r in map(server_root, servers) if r != server_root(server))]
        self._on_servers = on_servers
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.root + API_PREFIX,
            headers=headers,
            verify=tls_context(ca),
            timeout=connect_timeout(timeout),
        )
        self._streams: set[Any] = set()  # sockets of the streamed responses being read
        self._lock = threading.Lock()
        self._closed = False

    def close(self) -> None:
        """Close the session; a stream being read on another thread ends too (its read, blocked
        in recv, returns only when the socket is shut down: closing the session does not do it)."""
        with self._lock:
            self._closed = True
            for sock in self._streams:
                _shut(sock)
        self._http.close()

    def _track(self, response: httpx.Response) -> Any:
        stream = response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        with self._lock:
            if sock is not None and self._closed:
                _shut(sock)
            elif sock is not None:
                self._streams.add(sock)
        return sock

    def _untrack(self, sock: Any) -> None:
        with self._lock:
            self._streams.discard(sock)

    def _next_server(self, failed: str) -> None:
        """Move to the server after `failed` in the list (another thread may have moved already)."""
        with self._lock:
            if self.root != failed or len(self.servers) < 2:
                return
            at = self.servers.index(failed) if failed in self.servers else -1
            self.root = self.servers[(at + 1) % len(self.servers)]
            self._http.base_url = httpx.URL(self.root + API_PREFIX)

    def _learn(self, response: httpx.Response) -> None:
        """Keep the server list an answer carries; the owner is told when it changed."""
        named = parse_servers(response.headers.get(SERVERS_HEADER, ""))
        with self._lock:
            known = [*named] if self.root in named else [self.root, *named]
            if not named or set(known) == set(self.servers):
                return
            self.servers = known
        if self._on_servers is not None:
            self._on_servers(list(self.servers))

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The request to the current server, then to the next ones while it may be resent."""
        last: httpx.HTTPError | httpx.Response | None = None
        for _ in range(len(self.servers)):
            root = self.root
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                if not may_resend(method, exc) or len(self.servers) < 2:
                    raise unreachable(root, exc) from exc
                self._next_server(root)
                last = exc
                continue
            if front_only(response) and method.upper() in IDEMPOTENT and len(self.servers) > 1:
                self._next_server(root)
                last = response
                continue
            self._learn(response)
            return response
        if isinstance(last, httpx.HTTPError):
            raise unreachable(self.root, last) from last
        assert last is not None  # the loop ran: there is at least one server
        return last

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request; raises on no answer or an error status."""
        response = self._send(method, path, **kwargs)
        if response.status_code >= 400:
            raise for_status(response.status_code, error_message(response))
        return response

    def call_json(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request whose answer must be JSON."""
        response = self.call(method, path, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise ApiError(response.status_code, f"{method} {path}: the server's answer is not JSON") from exc

    @contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """A streamed request (logs -f, the event stream): no read timeout."""
        timeout = httpx.Timeout(DEFAULT_TIMEOUT_S, read=None)
        try:
            with self._http.stream(method, path, timeout=timeout, **kwargs) as response:
                if response.status_code >= 400:
                    response.read()
                    raise for_status(response.status_code, error_message(response))
                sock = self._track(response)
                try:
                    yield response
                finally:
                    self._untrack(sock)
        except httpx.HTTPError as exc:
            raise unreachable(self.root, exc) from exc


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)

"""The agent's own HTTP endpoints, on its overlay address, for the server only.

`GET /agent/v1/containers/<id>/logs?follow=&since=&tail=`, `POST /agent/v1/containers/<id>/exec`
and `GET /metrics` (docs/interfaces.md), every one behind the bearer `agent_secret` the server
gave at join. A plain WSGI app of three routes served by the standard library's wsgiref: no
werkzeug, no cheroot, as the agent's memory is a figure (issue 5: ≤ 60 MB) and one caller (the
server) makes a handful of requests. Connections run on a bounded pool (`WORKERS`, `QUEUED`
waiting; past that a connection gets 503 at once), each with a socket timeout; a followed log
sends an empty line after `keepalive` seconds of quiet, so it ends soon after its reader left.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import re
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Protocol
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from shoal.agent.bounded import BoundedPool
from shoal.errors import NotFound, ShoalError
from shoal.peer import peer_closed

log = logging.getLogger(__name__)

MAX_TAIL = 100_000
MAX_BODY = 1 << 20
EXEC_TIMEOUT_S = 60.0
WORKERS, QUEUED = 32, 8
SOCKET_TIMEOUT_S = 30.0  # one read or write; a followed log writes at least every keepalive
MAX_KEEPALIVE_S = 60.0
PEER_CLOSED = "shoal.peer_closed"
ROUTE = re.compile(r"^/agent/v1/containers/(?P<cid>[^/]+)/(?P<action>logs|exec)$")
METHODS = {"logs": "GET", "exec": "POST"}
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
           409: "Conflict", 413: "Content Too Large"}  # fmt: skip


class ContainerAccess(Protocol):
    """What the endpoints need of shoal.agent.runtime.Runtime."""

    def logs(
        self, container_id: str, since: float | None = None, tail: int | None = None
    ) -> Sequence[Any]: ...
    def follow_logs(
        self,
        container_id: str,
        since: float | None = None,
        tail: int | None = None,
        idle_s: float | None = None,
    ) -> Iterator[Any]: ...
    def exec(self, container_id: str, argv: Sequence[str], timeout: float = 30.0) -> Any: ...


def parse_since(text: str | None) -> float | None:
    """`since` as unix seconds or RFC 3339; None when absent; ValueError when unreadable."""
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def parse_tail(text: str | None) -> int | None:
    if text in (None, "", "all", "-1"):
        return None
    value = int(str(text))
    if value < 0 or value > MAX_TAIL:
        raise ValueError(f"tail must be 0..{MAX_TAIL}")
    return value


def authorized(header: str | None, secret: str) -> bool:
    scheme, _, token = (header or "").partition(" ")
    return bool(secret) and scheme.lower() == "bearer" and hmac.compare_digest(token.strip(), secret)


@dataclass
class Response:
    """What a route answers: a status, a content type and the body (bytes, or lines to stream)."""

    body: bytes | Iterable[bytes]
    status: int = 200
    content_type: str = "application/json"

    def __call__(self, start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response(f"{self.status} {REASONS.get(self.status, '')}", [("Content-Type", self.content_type)])
        return [self.body] if isinstance(self.body, bytes) else self.body


def jsonify(body: object, status: int = 200) -> Response:
    return Response(json.dumps(body).encode(), status)


def _error(status: int, text: str) -> Response:
    return jsonify({"error": text}, status)


def query(environ: dict[str, Any]) -> dict[str, str]:
    """The query string's parameters, the first value of each."""
    return {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def json_body(environ: dict[str, Any]) -> Any:
    """The request body as JSON; None when absent, too large or not JSON."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if not 0 < length <= MAX_BODY:
        return None
    try:
        return json.loads(environ["wsgi.input"].read(length))
    except ValueError:
        return None


@dataclass
class AgentApp:
    """The WSGI app: the secret first (every path), then the three routes."""

    containers: ContainerAccess
    secret: str
    metrics: Callable[[], bytes]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        return self.dispatch(environ)(start_response)

    def dispatch(self, environ: dict[str, Any]) -> Response:
        if not authorized(environ.get("HTTP_AUTHORIZATION"), self.secret):
            return _error(401, "missing or wrong agent secret")
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        if path == "/metrics":
            return self._metrics() if method == "GET" else _error(405, "use GET")
        found = ROUTE.match(path)
        if found is None:
            return _error(404, f"no such endpoint: {path}")
        cid, action = found["cid"], found["action"]
        if method != METHODS[action]:
            return _error(405, f"use {METHODS[action]}")
        if action == "logs":
            gone = environ.get(PEER_CLOSED)
            return logs_response(self.containers, cid, query(environ), gone if callable(gone) else None)
        return exec_response(self.containers, cid, json_body(environ))

    def _metrics(self) -> Response:
        return Response(self.metrics(), content_type="text/plain; version=0.0.4")


def create_app(containers: ContainerAccess, secret: str, metrics: Callable[[], bytes]) -> AgentApp:
    return AgentApp(containers, secret, metrics)


def logs_response(
    containers: ContainerAccess, cid: str, args: dict[str, str], gone: Callable[[], bool] | None = None
) -> Response:
    try:
        since, tail = parse_since(args.get("since")), parse_tail(args.get("tail"))
    except ValueError as exc:
        return _error(400, f"bad since or tail: {exc}")
    follow = args.get("follow", "0") in ("1", "true", "yes")
    try:
        keepalive = _keepalive(args.get("keepalive"))
        lines: Iterable[Any] = (
            containers.follow_logs(cid, since, tail, keepalive)
            if follow
            else containers.logs(cid, since, tail)
        )
    except ValueError as exc:
        return _error(400, f"bad keepalive: {exc}")
    except NotFound as exc:
        return _error(404, str(exc))
    return Response(_rendered(lines, gone), content_type="text/plain")


def _rendered(lines: Iterable[Any], gone: Callable[[], bool] | None) -> Iterator[bytes]:
    """The lines as the endpoint writes them; a keepalive (None) ends the stream instead when
    its reader has gone (a quiet log would otherwise hold its thread until the next real line)."""
    for line in lines:
        if line is None and gone is not None and gone():
            return
        yield _line_bytes(line)


def _keepalive(text: str | None) -> float | None:
    """Seconds of quiet after which a followed log sends an empty line; None: never."""
    if not text:
        return None
    value = float(text)
    if not 0.1 <= value <= MAX_KEEPALIVE_S:
        raise ValueError(f"must be 0.1..{MAX_KEEPALIVE_S:g} seconds")
    return value


def _line_bytes(line: Any) -> bytes:
    return b"\n" if line is None else f"{line.render()}\n".encode()


def exec_response(containers: ContainerAccess, cid: str, body: Any) -> Response:
    cmd = body.get("cmd") if isinstance(body, dict) else None
    if not isinstance(cmd, list) or not cmd or not all(isinstance(c, str) for c in cmd):
        return _error(400, "cmd must be a non-empty list of strings")
    try:
        result = containers.exec(cid, cmd, EXEC_TIMEOUT_S)
    except NotFound as exc:
        return _error(404, str(exc))
    except ShoalError as exc:
        return _error(409, str(exc))
    return jsonify({"exit_code": result.exit_code, "output": result.output})


BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
    b'Content-Length: 45\r\n\r\n{"error": "agent endpoint busy, retry later"}'
)


class _Server(WSGIServer):
    """wsgiref's server, each connection on the bounded pool (refused with 503 when it is full)."""

    pool: BoundedPool

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.pool.submit(self._process, request, client_address):
            with contextlib.suppress(OSError):
                request.sendall(BUSY)
            self.shutdown_request(request)

    def _process(self, request: socket.socket, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)


class _Quiet(WSGIRequestHandler):
    timeout = SOCKET_TIMEOUT_S

    def get_environ(self) -> dict[str, Any]:
        environ = super().get_environ()
        environ[PEER_CLOSED] = partial(peer_closed, self.connection)
        return environ

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("agent endpoint: " + format, *args)


@dataclass
class AgentHttpd:
    """wsgiref serving the app in a daemon thread, a thread per connection."""

    app: AgentApp
    host: str
    port: int
    _server: WSGIServer | None = None
    _thread: threading.Thread | None = field(default=None)

    def start(self) -> None:
        server = make_server(self.host, self.port, self.app, _Server, _Quiet)
        server.pool = BoundedPool(WORKERS, QUEUED, "agent-http")
        self._server = server
        self._thread = threading.Thread(target=self._server.serve_forever, name="agent-httpd", daemon=True)
        self._thread.start()
        log.info("agent endpoints on %s:%d", self.host, self.port)

    def stop(self) -> None:
        if isinstance(self._server, _Server):
            self._server.shutdown()
            self._server.server_close()
            self._server.pool.shutdown(wait=False)
        if self._thread is not None:
            self._thread.join(timeout=5)

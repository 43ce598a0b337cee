"""The agent's own HTTP endpoints, on its overlay address, for the server only.

`GET /agent/v1/containers/<id>/logs?follow=&since=&tail=`, `POST /agent/v1/containers/<id>/exec`
and `GET /metrics` (docs/interfaces.md), every one behind the bearer `agent_secret` the server
gave at join. A small WSGI app (werkzeug request/response and routing, no Flask: the agent's
memory is a figure) served by cheroot in a thread of the agent process.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from cheroot import wsgi
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

from shoal.errors import NotFound, ShoalError

log = logging.getLogger(__name__)

MAX_TAIL = 100_000
EXEC_TIMEOUT_S = 60.0
HTTP_THREADS = 8  # each `logs -f` holds one while it streams (idle ones are cheap: see agent.memory)


class ContainerAccess(Protocol):
    """What the endpoints need of shoal.agent.runtime.Runtime."""

    def logs(
        self, container_id: str, since: float | None = None, tail: int | None = None
    ) -> Sequence[Any]: ...
    def follow_logs(
        self, container_id: str, since: float | None = None, tail: int | None = None
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


def jsonify(body: object, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _error(status: int, text: str) -> Response:
    return jsonify({"error": text}, status)


ROUTES = Map(
    [
        Rule("/metrics", endpoint="metrics", methods=["GET"]),
        Rule("/agent/v1/containers/<cid>/logs", endpoint="logs", methods=["GET"]),
        Rule("/agent/v1/containers/<cid>/exec", endpoint="exec", methods=["POST"]),
    ]
)


@dataclass
class AgentApp:
    """The WSGI app: the secret first (every path), then the three routes."""

    containers: ContainerAccess
    secret: str
    metrics: Callable[[], bytes]

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        response = self.dispatch(Request(environ))
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        if not authorized(request.headers.get("Authorization"), self.secret):
            return _error(401, "missing or wrong agent secret")
        try:
            endpoint, values = ROUTES.bind_to_environ(request.environ).match()
        except HTTPException as exc:
            return _error(exc.code or 404, exc.description or exc.name)
        if endpoint == "metrics":
            return Response(self.metrics(), mimetype="text/plain; version=0.0.4")
        if endpoint == "logs":
            return logs_response(self.containers, values["cid"], request.args)
        return exec_response(self.containers, values["cid"], request.get_json(silent=True))

    def test_client(self) -> Client:
        """werkzeug's test client over this app (as Flask's app.test_client())."""
        return Client(self, Response)


def create_app(containers: ContainerAccess, secret: str, metrics: Callable[[], bytes]) -> AgentApp:
    return AgentApp(containers, secret, metrics)


def logs_response(containers: ContainerAccess, cid: str, args: Any) -> Response:
    try:
        since, tail = parse_since(args.get("since")), parse_tail(args.get("tail"))
    except ValueError as exc:
        return _error(400, f"bad since or tail: {exc}")
    follow = args.get("follow", "0") in ("1", "true", "yes")
    try:
        lines: Iterable[Any] = (
            containers.follow_logs(cid, since, tail) if follow else containers.logs(cid, since, tail)
        )
    except NotFound as exc:
        return _error(404, str(exc))
    return Response((line.render() + "\n" for line in lines), mimetype="text/plain")


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


@dataclass
class AgentHttpd:
    """cheroot serving the app in a daemon thread."""

    app: AgentApp
    host: str
    port: int
    _server: wsgi.Server | None = None
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._server = wsgi.Server((self.host, self.port), self.app, numthreads=HTTP_THREADS)
        self._server.prepare()
        self._thread = threading.Thread(target=self._server.serve, name="agent-httpd", daemon=True)
        self._thread.start()
        log.info("agent endpoints on %s:%d", self.host, self.port)

    @property
    def bound_port(self) -> int:
        assert self._server is not None
        return int(self._server.bind_addr[1])

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)

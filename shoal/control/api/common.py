"""What every blueprint shares: the server context, auth checks, body parsing, JSON errors.

Every error a request can cause ends as `{"error": "<one line>"}` with a 4xx (503 when PostgreSQL
is down) — never a 500 for bad input.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
from flask import Flask, current_app, g, has_request_context, jsonify, request
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException

from shoal.control import auth
from shoal.control.agents import AgentUnreachable
from shoal.control.config import ServerConfig
from shoal.control.desired import Builder
from shoal.control.fairuse import Release, Slots, TooMany
from shoal.control.hub import Hub
from shoal.control.serve import NODE_LANE, lane_of
from shoal.control.store import events
from shoal.control.store.db import Database, DatabaseUnavailable
from shoal.control.vault import Vault
from shoal.errors import ConfigError, Conflict, NotFound, ShoalError, first_line

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)


@dataclass
class ServerContext:
    config: ServerConfig
    people_db: Database
    node_db: Database  # the node lane's own connections: people cannot exhaust them
    hub: Hub
    vault: Vault
    builder: Builder
    ca_fingerprint: str
    leader: threading.Event | None = None  # set while this server's controller leads
    server_urls: list[str] = field(default_factory=list)  # every server's URL (control.presence)
    auth_cache: dict[str, tuple[auth.Principal, float]] = field(default_factory=dict)
    slots: Slots = field(default_factory=Slots)

    @property
    def db(self) -> Database:
        """The pool of the lane serving the current request (people's outside a request)."""
        if has_request_context() and lane_of(request.environ) == NODE_LANE:
            return self.node_db
        return self.people_db

    def set_server_urls(self, urls: list[str]) -> None:
        self.server_urls = urls

    def close(self) -> None:
        self.hub.stop()
        self.people_db.close()
        self.node_db.close()


def ctx() -> ServerContext:
    found = current_app.extensions["shoal"]
    assert isinstance(found, ServerContext)
    return found


def caller(role: str) -> auth.Principal:
    """The authenticated caller, who must hold at least `role` (a person's token)."""
    who = principal()
    who.require_role(role)
    return who


def node_caller(name: str) -> auth.Principal:
    """The authenticated caller, who must be node `name` itself."""
    who = principal()
    who.require_node(name)
    return who


AUTH_CACHE_S = 3.0  # a removed token or node stops working within this long


def _authenticated() -> auth.Principal:
    token = auth.bearer(request.headers.get("Authorization"))
    cache = ctx().auth_cache
    hit = cache.get(token)
    if hit is not None and hit[1] > time.monotonic():
        return hit[0]
    with ctx().db.transaction() as conn:
        found = auth.authenticate(conn, token)
    if len(cache) > 10000:
        cache.clear()
    cache[token] = (found, time.monotonic() + AUTH_CACHE_S)
    return found


def principal() -> auth.Principal:
    """The authenticated caller; the events this request emits name it (`events.acting`)."""
    found = _authenticated()
    if "acting" not in g:
        g.acting = events.acting_as(found.label)
    return found


def end_acting(_exc: BaseException | None = None) -> None:
    """teardown_request: the next request on this thread starts with no principal."""
    token = g.pop("acting", None)
    if token is not None:
        events.stop_acting(token)


def hold(who: auth.Principal) -> Release:
    """A slot for a long request (stream, followed log, exec, long-poll), or TooMany (429)."""
    config = ctx().config
    if who.kind == "node":
        return ctx().slots.take(
            [(f"node:{who.node}", config.requests_per_node, f"requests of node {who.node}")]
        )
    return ctx().slots.take(
        [
            (f"token:{who.id}", config.streams_per_principal, f"streams of token {who.id}"),
            ("people", config.people_streams, "streams of all people"),
        ]
    )


def _field(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def body(model: type[M]) -> M:
    """The JSON body validated against `model`; a bad body is a 400 naming the field."""
    data = request.get_json(silent=True)
    if data is None:
        raise ConfigError("request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"{_field(first['loc'])}: {first['msg']}") from exc


def int_arg(name: str, default: int, low: int = 0, high: int = 2**62) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}: expected an integer, got {raw!r}") from exc
    if not low <= value <= high:
        raise ConfigError(f"{name}: must be between {low} and {high}")
    return value


def jsonable(value: Any) -> Any:
    """Rows → JSON: datetimes as RFC 3339 strings, recursively."""
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


_STATUS: list[tuple[type[Exception], int]] = [
    (auth.Unauthorized, 401),
    (auth.Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (DatabaseUnavailable, 503),
    (AgentUnreachable, 502),
    (TooMany, 429),
]


def _error(message: str, status: int) -> ResponseReturnValue:
    return jsonify({"error": message}), status


def _shoal_error(exc: ShoalError) -> ResponseReturnValue:
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return _error(str(exc), status)
    return _error(str(exc), 400)


def _http_error(exc: HTTPException) -> ResponseReturnValue:
    return _error(exc.description or exc.name, exc.code or 500)


def _db_error(exc: psycopg.Error) -> ResponseReturnValue:
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return _error(f"database unavailable: {first_line(exc)}", 503)
    if isinstance(exc, psycopg.errors.IntegrityError):
        return _error(f"conflict: {first_line(exc)}", 409)
    if isinstance(exc, psycopg.errors.DataError):
        return _error(f"bad value: {first_line(exc)}", 400)
    log.exception("database error")
    return _error(f"database error: {type(exc).__name__}", 500)


def _unexpected(exc: Exception) -> ResponseReturnValue:
    log.exception("unexpected error")
    return _error(f"internal error: {type(exc).__name__}", 500)


def register_errors(app: Flask) -> None:
    handlers: list[tuple[type[Exception], Callable[[Any], ResponseReturnValue]]] = [
        (ShoalError, _shoal_error),
        (HTTPException, _http_error),
        (psycopg.Error, _db_error),
        (Exception, _unexpected),
    ]
    for kind, handler in handlers:
        app.register_error_handler(kind, handler)

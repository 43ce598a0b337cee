"""Events: the list and a server-sent-events stream woken by NOTIFY.

A stream holds one of its token's stream slots (fairuse.py), ends after `stream_max_s` (the
client resumes from the last id it got) and within a second of its client going away.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

from flask import Blueprint, Response, jsonify, request, stream_with_context

from shoal.control.api.common import ServerContext, caller, ctx, hold, int_arg, jsonable
from shoal.control.fairuse import Release
from shoal.control.hub import EVENTS_KEY
from shoal.control.serve import client_gone
from shoal.control.store import events

bp = Blueprint("events", __name__, url_prefix="/api/v1/events")
KEEPALIVE_S = 15.0
CHECK_S = 1.0  # how soon a stream notices its client left


@bp.get("")
def list_events() -> Response:
    caller("viewer")
    since = int_arg("since", -1, low=-1)
    limit = int_arg("limit", 100, low=1, high=10000)
    with ctx().db.transaction() as conn:
        rows = events.latest(conn, limit) if since < 0 else events.since(conn, since, limit)
    return jsonify(jsonable(rows))


def _read(server: ServerContext, last: int) -> tuple[list[str], int]:
    """The SSE frames of the events after `last` (none and the newest id when `last` < 0)."""
    with server.db.transaction() as conn:
        if last < 0:
            row = conn.execute("SELECT coalesce(max(id), 0) AS m FROM events").fetchone()
            return [], int(row["m"]) if row else 0
        rows = events.since(conn, last, 500)
    frames = [f"id: {row['id']}\ndata: {json.dumps(jsonable(row))}\n\n" for row in rows]
    return frames, int(rows[-1]["id"]) if rows else last


def _stream(server: ServerContext, since: int, gone: Callable[[], bool], release: Release) -> Iterator[str]:
    deadline = time.monotonic() + server.config.stream_max_s
    try:
        yield ": stream open\n\n"  # the status and headers go out now, not with the first event
        ticket = server.hub.ticket(EVENTS_KEY)
        frames, last = _read(server, since)
        yield from frames
        quiet_since = time.monotonic()
        while time.monotonic() < deadline and not gone() and not server.hub.stopping:
            if server.hub.wait(EVENTS_KEY, ticket, CHECK_S):
                ticket = server.hub.ticket(EVENTS_KEY)
                frames, last = _read(server, last)
                yield from frames
                quiet_since = time.monotonic() if frames else quiet_since
            elif time.monotonic() - quiet_since >= KEEPALIVE_S:
                quiet_since = time.monotonic()
                yield ": keepalive\n\n"
    finally:
        release()


@bp.get("/stream")
def stream() -> Response:
    since = int_arg("since", -1, low=-1)
    release = hold(caller("viewer"))
    gen = _stream(ctx(), since, client_gone(request.environ), release)
    response = Response(
        stream_with_context(gen), mimetype="text/event-stream", headers={"Cache-Control": "no-cache"}
    )
    response.call_on_close(release)
    return response

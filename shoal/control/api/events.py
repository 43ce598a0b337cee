"""Events: the list and a server-sent-events stream woken by NOTIFY."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

from flask import Blueprint, Response, jsonify, stream_with_context

from shoal.control.api.common import ServerContext, caller, ctx, int_arg, jsonable
from shoal.control.hub import EVENTS_KEY
from shoal.control.store import events

bp = Blueprint("events", __name__, url_prefix="/api/v1/events")
KEEPALIVE_S = 15.0


@bp.get("")
def list_events() -> Response:
    caller("viewer")
    since = int_arg("since", -1, low=-1)
    limit = int_arg("limit", 100, low=1, high=10000)
    with ctx().db.transaction() as conn:
        rows = events.latest(conn, limit) if since < 0 else events.since(conn, since, limit)
    return jsonify(jsonable(rows))


def _stream(server: ServerContext, since: int) -> Iterator[str]:
    last = since
    while True:
        ticket = server.hub.ticket(EVENTS_KEY)
        with server.db.transaction() as conn:
            rows = events.since(conn, last, 500) if last >= 0 else events.latest(conn, 0)
            if last < 0:
                row = conn.execute("SELECT coalesce(max(id), 0) AS m FROM events").fetchone()
                last = int(row["m"]) if row else 0
        for row in rows:
            last = int(row["id"])
            yield f"id: {last}\ndata: {json.dumps(jsonable(row))}\n\n"
        started = time.monotonic()
        if not server.hub.wait(EVENTS_KEY, ticket, KEEPALIVE_S) and time.monotonic() - started >= KEEPALIVE_S:
            yield ": keepalive\n\n"


@bp.get("/stream")
def stream() -> Response:
    caller("viewer")
    since = int_arg("since", -1, low=-1)
    gen = _stream(ctx(), since)
    return Response(
        stream_with_context(gen), mimetype="text/event-stream", headers={"Cache-Control": "no-cache"}
    )

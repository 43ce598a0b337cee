"""The web UI's pages and the fragments they refresh live (control/ui, read side).

Each page renders its data once and names a fragment URL that shoal.js re-fetches every few
seconds, so pages stay live without full reloads and work without JavaScript too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from flask import Response, render_template, request, stream_with_context
from markupsafe import escape

from shoal.control.api.common import hold
from shoal.control.auth import Principal
from shoal.control.fairuse import Release
from shoal.control.serve import client_gone
from shoal.control.ui.blueprint import bp
from shoal.control.ui.session import api, login_required

EVENT_STREAM_SECONDS = 300  # the browser's EventSource reconnects on its own after this


def _overview_data() -> dict[str, Any]:
    with api() as client:
        nodes = client.get("/nodes")
        services = client.get("/services")
    counts = {"ready": 0, "down": 0, "draining": 0}
    for node in nodes:
        state = "draining" if node.get("availability") == "drain" else node.get("state", "down")
        counts[state if state in counts else "down"] += 1
    return {"counts": counts, "services": services}


@bp.get("/")
@login_required
def overview() -> str:
    with api() as client:
        events = client.get("/events", limit=20)
    return render_template("overview.html", events=list(reversed(events)), **_overview_data())


@bp.get("/fragments/overview")
@login_required
def overview_fragment() -> str:
    return render_template("_overview.html", **_overview_data())


def _nodes() -> list[dict[str, Any]]:
    with api() as client:
        nodes: list[dict[str, Any]] = client.get("/nodes")
    return nodes


@bp.get("/nodes")
@login_required
def nodes() -> str:
    return render_template("nodes.html", nodes=_nodes())


@bp.get("/fragments/nodes")
@login_required
def nodes_fragment() -> str:
    return render_template("_nodes_table.html", nodes=_nodes())


def _node(name: str) -> dict[str, Any]:
    with api() as client:
        node: dict[str, Any] = client.get(f"/nodes/{name}")
    return node


@bp.get("/nodes/<name>")
@login_required
def node(name: str) -> str:
    return render_template("node.html", node=_node(name))


@bp.get("/fragments/nodes/<name>")
@login_required
def node_fragment(name: str) -> str:
    return render_template("_node.html", node=_node(name))


def _services() -> list[dict[str, Any]]:
    with api() as client:
        services: list[dict[str, Any]] = client.get("/services")
    return services


@bp.get("/services")
@login_required
def services() -> str:
    return render_template("services.html", services=_services())


@bp.get("/fragments/services")
@login_required
def services_fragment() -> str:
    return render_template("_services_table.html", services=_services())


def _service(name: str) -> dict[str, Any]:
    with api() as client:
        service: dict[str, Any] = client.get(f"/services/{name}")
    return service


@bp.get("/services/<name>")
@login_required
def service(name: str) -> str:
    return render_template("service.html", service=_service(name))


@bp.get("/fragments/services/<name>")
@login_required
def service_fragment(name: str) -> str:
    return render_template("_service.html", service=_service(name))


@bp.get("/fragments/services/<name>/logs")
@login_required
def service_logs(name: str) -> str:
    with api() as client:
        text = client.text(f"/services/{name}/logs", tail=200)
    return str(escape(text))


@bp.get("/fragments/deploy-progress")
@login_required
def deploy_progress() -> str:
    names = [n for n in request.args.get("names", "").split(",") if n]
    with api() as client:
        progress = [client.get(f"/services/{name}") for name in names]
    return render_template("_progress.html", progress=progress)


@bp.get("/events")
@login_required
def events() -> str:
    with api() as client:
        recent = client.get("/events", limit=100)
    return render_template("events.html", events=list(reversed(recent)))


@bp.get("/events/stream")
@login_required
def events_stream() -> Response:
    """Holds one of the person's stream slots, as an API event stream does (fairuse.py)."""
    with api() as client:
        me = client.get("/whoami")
    release = hold(Principal(kind="user", role=str(me.get("role", "")), id=str(me.get("id", ""))))
    since = int(request.args.get("since", 0) or 0) or _latest_event_id()
    stream = stream_with_context(_event_lines(since, client_gone(request.environ), release))
    response = Response(stream, mimetype="text/event-stream", headers={"Cache-Control": "no-store"})
    response.call_on_close(release)
    return response


def _latest_event_id() -> int:
    with api() as client:
        recent = client.get("/events", limit=1)
    return int(recent[-1]["id"]) if recent else 0


def _event_lines(since: int, gone: Callable[[], bool], release: Release) -> Iterator[str]:
    deadline = time.monotonic() + EVENT_STREAM_SECONDS
    try:
        yield ": stream open\n\n"
        while time.monotonic() < deadline and not gone():
            with api() as client:
                batch = client.get("/events", since=since, limit=100)
            for event in batch:
                since = max(since, int(event["id"]))
                yield f"id: {event['id']}\ndata: {json.dumps(event)}\n\n"
            time.sleep(1.0)
    finally:
        release()


@bp.get("/policy")
@login_required
def policy() -> str:
    """The current node policy, read-only (admins set it with `shoal policy set`)."""
    with api() as client:
        current = client.get("/policy")
        history = client.get("/policy/versions", limit=20)
    return render_template("policy.html", policy=current, history=history)

"""The agents' side of the API: join, the node-state long-poll, status reports (heartbeats).

Join takes its token from `Authorization: Bearer shoal-join...` and checks it before reading the
body (the body's `token`, sent by older clients, must then be the same). The node gets the labels,
ingress flag and relay mark its token grants, never what its request asks for (`labels` and
`ingress` in the body are requests: read, logged when not granted, otherwise ignored). A node's
long-poll and report run on the node lane (serve.py) and each holds one of the node's request slots.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time

from flask import Blueprint, Response, g, jsonify, request

from shoal.control import auth
from shoal.control.api.common import body, ctx, hold, int_arg, node_caller
from shoal.control.store import events, nodes, tasks, tokens
from shoal.control.store.db import Conn, cluster_changed, poke_controller, retrying
from shoal.model.addressing import overlay_ip
from shoal.model.join_wire import JoinGrants, JoinRequest
from shoal.model.status import NodeStatus

bp = Blueprint("agent", __name__, url_prefix="/api/v1")
MAX_WAIT_S = 60
log = logging.getLogger(__name__)


def _serveroverlay_ip(conn: Conn) -> str | None:
    name = ctx().config.server_node
    row = nodes.get(conn, name) if name else None
    return None if row is None else overlay_ip(row["subnet"])


JOIN_REFUSED = "join token is unknown, expired, used up or revoked"
SERVER_NAME_REFUSED = (
    "node name {name} is the server's own machine: join it with the token `shoal server init` printed"
)


def _join_token() -> tuple[str, str]:
    """The join token of the Authorization header and its hash, checked before any body is read."""
    token = auth.bearer(request.headers.get("Authorization"))
    hashed = auth.join_secret_hash(token)
    with ctx().db.transaction() as conn:
        token_id = tokens.join_usable(conn, hashed)
    if token_id is None:
        raise auth.Unauthorized(JOIN_REFUSED)
    g.acting = events.acting_as(f"join token {token_id}")  # the node.joined event names it
    return token, hashed


@bp.post("/join")
def join() -> Response:
    token, hashed = _join_token()
    req = body(JoinRequest)
    if req.token and req.token != token:
        raise auth.Unauthorized("the join token in the body is not the one in the Authorization header")
    credential, agent_secret = auth.new_node_credential(), auth.new_secret()
    config = ctx().config
    with ctx().db.transaction() as conn:
        grants = tokens.use_join(conn, hashed)
        if grants is None:
            raise auth.Unauthorized(JOIN_REFUSED)
        if req.name == config.server_node and not grants.server:
            raise auth.Forbidden(SERVER_NAME_REFUSED.format(name=req.name))
        row = nodes.create(conn, config.cluster_cidr, _node_fields(req, grants, credential, agent_secret))
        events.emit(conn, "node.joined", req.name, f"node {req.name} joined with subnet {row['subnet']}")
        poke_controller(conn)
        server_ip = _serveroverlay_ip(conn)
    _note_ungranted(req, grants)
    return jsonify(
        node=req.name,
        credential=credential,
        agent_secret=agent_secret,
        subnet=row["subnet"],
        overlay_ip=overlay_ip(row["subnet"]),
        cluster_cidr=config.cluster_cidr,
        server_overlay_ip=server_ip,
        labels=grants.labels,
        ingress=grants.ingress,
        relay=grants.relay,
    )


def ungranted(req: JoinRequest, grants: JoinGrants) -> list[str]:
    """What the join request asks for that its token does not grant (`k=v` labels, `ingress`)."""
    labels = [f"{k}={v}" for k, v in sorted(req.labels.items()) if grants.labels.get(k) != v]
    return labels + (["ingress"] if req.ingress and not grants.ingress else [])


def _note_ungranted(req: JoinRequest, grants: JoinGrants) -> None:
    """One log line when a joined node asked for more than its token grants (an older agent's
    `--label`/`--ingress`, or a hand-made request): it did not get it."""
    asked = ungranted(req, grants)
    if asked:
        log.warning(
            "join of node %s: its join token does not grant %s; ignored (an admin sets them:"
            " shoal node label|ingress, shoal token create --role join --label/--ingress)",
            req.name,
            ", ".join(asked),
        )


def _node_fields(
    req: JoinRequest, grants: JoinGrants, credential: str, agent_secret: str
) -> dict[str, object]:
    return {
        "name": req.name,
        "public_key": req.public_key,
        "endpoint": req.endpoint,
        "labels": grants.labels,
        "ingress": grants.ingress,
        "relay": grants.relay,
        "role": "server" if req.name == ctx().config.server_node and grants.server else "worker",
        "capacity": req.capacity.model_dump(),
        "credential_hash": auth.digest(credential),
        "agent_secret": agent_secret,
    }


def _wait_for_version(name: str, since: int, wait_s: int) -> None:
    """Block until the node's state version exceeds `since` or the wait is over."""
    hub, db = ctx().hub, ctx().db
    deadline = time.monotonic() + wait_s
    while True:
        ticket = hub.ticket(name)
        with db.transaction() as conn:
            version = nodes.state_version(conn, name)
        left = deadline - time.monotonic()
        if version > since or left <= 0 or hub.stopping:
            return
        hub.wait(name, ticket, left)


@bp.get("/nodes/<name>/state")
def node_state(name: str) -> Response:
    release = hold(node_caller(name))
    try:
        since = int_arg("since", -1, low=-1)
        _wait_for_version(name, since, int_arg("wait", 0, high=MAX_WAIT_S))
        with ctx().db.transaction() as conn:
            document = ctx().builder.node_state_json(conn, name)
    finally:
        release()
    return Response(document, mimetype="application/json")


def _record_containers(conn: Conn, name: str, status: NodeStatus) -> bool:
    reports = [(c.id, c.state, c.health, c.message[:500]) for c in status.containers]
    changed = tasks.observe_many(conn, name, reports)
    ended = [
        (c.id, c.exit_code) for c in status.containers if c.state == "exited" and c.exit_code is not None
    ]
    tasks.record_exit_codes(conn, name, ended)
    changed |= tasks.mark_missing(conn, name, [c.id for c in status.containers])
    return changed


_last_status: dict[str, tuple[str, float]] = {}  # node → (digest of its last stored status, when)
STATUS_REFRESH_S = 10.0


def _digest(status: NodeStatus) -> str:
    raw = status.model_dump(mode="json", exclude={"time"})
    return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()


def _repeats(name: str, digest: str) -> bool:
    """Whether a report only repeats the node's last stored one (a heartbeat)."""
    last = _last_status.get(name)
    return last is not None and last[0] == digest and time.monotonic() - last[1] < STATUS_REFRESH_S


_last_facts: dict[str, tuple[object, ...]] = {}  # node → what its last report told of the mesh


def _mesh_facts(status: NodeStatus) -> tuple[object, ...]:
    """What a report tells the mesh: where its tunnels' peers are seen from, its LAN address, the
    relay it goes through (counters are not news)."""
    seen = sorted((p.name, p.endpoint) for p in status.peers if p.endpoint and p.path == "direct")
    via = sorted({p.via for p in status.peers if p.path == "relayed"})
    return (status.lan_endpoint, *seen, *via)


def _record_status(conn: Conn, name: str, status: NodeStatus, repeat: bool, mesh_news: bool = False) -> bool:
    """Store a report; a heartbeat repeating the last report only marks the node seen. Whether
    the report was stored (not a repeat, nor one that crossed a later report in flight)."""
    # the node's row before its tasks: the order the controller locks them in
    was_down = nodes.heartbeat(conn, name, status.capacity.model_dump())
    stored = (not repeat or was_down) and nodes.store_status(conn, name, status.model_dump(mode="json"))
    changed = stored and _record_containers(conn, name, status)
    changed = changed or (stored and mesh_news)  # NAT'd nodes learn where to try each other
    if stored and status.applied_version is not None:
        nodes.set_applied(conn, name, status.applied_version, status.applied_cluster_version)
    if changed or was_down:
        cluster_changed(conn)
    if was_down:
        events.emit(conn, "node.up", name, f"node {name} is back")
        poke_controller(conn)
    return stored


@bp.post("/nodes/<name>/status")
def node_status(name: str) -> Response:
    release = hold(node_caller(name))
    try:
        status = body(NodeStatus)
        digest = _digest(status)
        repeat = _repeats(name, digest)
        facts = _mesh_facts(status)
        news = _last_facts.get(name) != facts
        if retrying(ctx().db, lambda conn: _record_status(conn, name, status, repeat, news)):
            _last_status[name] = (digest, time.monotonic())  # once stored: a failed store is not one
            _last_facts[name] = facts
    finally:
        release()
    return jsonify(ok=True)

"""Health, the CA certificate, whoami, the servers, the OpenAPI document and Prometheus metrics."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shoal.control.api.common import caller, ctx, jsonable, principal
from shoal.control.openapi import document
from shoal.control.store import servers
from shoal.errors import first_line

bp = Blueprint("meta", __name__)


@bp.get("/api/v1/health")
def health() -> tuple[Response, int]:
    try:
        with ctx().db.transaction() as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return jsonify(ok=False, database=False, error=first_line(exc)), 503
    leader = ctx().leader
    role = "off" if leader is None else ("leader" if leader.is_set() else "standby")
    return jsonify(ok=True, database=True, controller=role), 200


@bp.get("/api/v1/ca")
def ca() -> Response:
    return Response(ctx().config.ca_cert.read_bytes(), mimetype="application/x-pem-file")


@bp.get("/api/v1/whoami")
def whoami() -> Response:
    me = principal()
    kind = "node" if me.kind == "node" else "token"
    return jsonify(kind=kind, name=me.name or me.node, role=me.role or None, id=me.id or me.node)


@bp.get("/api/v1/servers")
def list_servers() -> Response:
    """Every server of the last week: node, url, leader, version, last_seen (`shoal server ls`)."""
    caller("viewer")
    with ctx().db.transaction() as conn:
        return jsonify(jsonable(servers.all_servers(conn)))


@bp.get("/api/v1/openapi.json")
def openapi_doc() -> Response:
    return jsonify(document())


@bp.get("/metrics")
def metrics() -> Response:
    return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)

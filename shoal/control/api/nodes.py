"""Nodes for people: list, inspect, drain, activate, label, relay and ingress (admin), remove."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify
from pydantic import BaseModel

from shoal.control.api.common import body, caller, ctx, jsonable
from shoal.control.mesh import relay_allowed
from shoal.control.store import events, nodes, tasks
from shoal.control.store.db import Conn, Row, notify_all_nodes, poke_controller
from shoal.model.addressing import overlay_ip

bp = Blueprint("nodes", __name__, url_prefix="/api/v1/nodes")
EMPTY = {"cpus": 0.0, "memory_bytes": 0, "tasks": 0}


class LabelsRequest(BaseModel):
    labels: dict[str, str | None]


class RelayRequest(BaseModel):
    relay: bool


class IngressRequest(BaseModel):
    ingress: bool


def is_relay(row: Row) -> bool:
    """Whether the node relays for NAT'd nodes: public, marked by an admin, not labelled against."""
    return bool(row["endpoint"]) and relay_allowed(bool(row["relay"]), row["labels"] or {})


def node_view(
    row: Row,
    allocated: dict[str, Any],
    relays: dict[str, str] | None = None,
    versions: dict[str, str] | None = None,
) -> dict[str, Any]:
    state = nodes.state_of(row)
    view = {k: row[k] for k in ("name", "availability", "subnet", "endpoint", "labels", "ingress", "role")}
    return dict(
        jsonable(
            {
                **view,
                "state": state,
                "capacity": row["capacity"],
                "allocated": allocated.get(row["name"], EMPTY),
                "last_seen": row["last_seen"],
                "address": overlay_ip(row["subnet"]),
                "state_version": row["state_version"],
                "relay": (relays or {}).get(row["name"], ""),
                "is_relay": is_relay(row),
                "version": (versions or {}).get(row["name"], ""),
                "applied_version": row["applied_version"],  # null: its agent has not said
            }
        )
    )


@bp.get("")
def list_nodes() -> Response:
    caller("viewer")
    with ctx().db.transaction() as conn:
        alloc, relays, versions = tasks.allocated(conn), nodes.relays_in_use(conn), nodes.agent_versions(conn)
        return jsonify([node_view(r, alloc, relays, versions) for r in nodes.all_nodes(conn)])


@bp.get("/<name>")
def inspect_node(name: str) -> Response:
    caller("viewer")
    with ctx().db.transaction() as conn:
        view = node_view(nodes.require(conn, name), tasks.allocated(conn), nodes.relays_in_use(conn))
        status = nodes.last_status(conn, name)
        view["peers"] = status.get("peers", [])
        view["agent_version"] = status.get("agent_version", "")
        view["tasks"] = jsonable(tasks.query(conn, node=name))
    return jsonify(view)


def _changed(conn: Conn, name: str, kind: str, message: str) -> Response:
    events.emit(conn, kind, name, message)
    notify_all_nodes(conn)
    poke_controller(conn)
    return jsonify(node_view(nodes.require(conn, name), tasks.allocated(conn)))


@bp.post("/<name>/drain")
def drain(name: str) -> Response:
    caller("admin")
    with ctx().db.transaction() as conn:
        nodes.require(conn, name)
        nodes.set_availability(conn, name, "drain")
        return _changed(conn, name, "node.drain", f"node {name} is draining")


@bp.post("/<name>/activate")
def activate(name: str) -> Response:
    caller("admin")
    with ctx().db.transaction() as conn:
        nodes.require(conn, name)
        nodes.set_availability(conn, name, "active")
        return _changed(conn, name, "node.activate", f"node {name} is active")


@bp.post("/<name>/labels")
def labels(name: str) -> Response:
    caller("admin")
    req = body(LabelsRequest)
    with ctx().db.transaction() as conn:
        nodes.set_labels(conn, name, req.labels)
        return _changed(conn, name, "node.labels", f"node {name} labels changed")


@bp.post("/<name>/relay")
def relay(name: str) -> Response:
    caller("admin")
    req = body(RelayRequest)
    with ctx().db.transaction() as conn:
        nodes.set_relay(conn, name, req.relay)
        return _changed(conn, name, "node.relay", f"node {name} {'may' if req.relay else 'may not'} relay")


@bp.post("/<name>/ingress")
def ingress(name: str) -> Response:
    caller("admin")
    req = body(IngressRequest)
    with ctx().db.transaction() as conn:
        nodes.set_ingress(conn, name, req.ingress)
        return _changed(conn, name, "node.ingress", f"node {name} ingress {'on' if req.ingress else 'off'}")


@bp.delete("/<name>")
def remove(name: str) -> Response:
    caller("admin")
    with ctx().db.transaction() as conn:
        nodes.remove(conn, name)
        events.emit(conn, "node.removed", name, f"node {name} removed")
        poke_controller(conn)
    return jsonify(ok=True)

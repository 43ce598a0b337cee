"""Deploy and services (list, inspect, scale, restart, rollback, remove) and tasks (ps)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

from flask import Blueprint, Response, jsonify, request
from pydantic import BaseModel, Field

from shoal.control import deploy, redact, secret_scope
from shoal.control.api.common import body, caller, ctx, jsonable
from shoal.control.api.volumes import forgotten
from shoal.control.store import events, nodes, secrets, services, tasks, volumes
from shoal.control.store.db import Conn, Row, poke_controller, retrying
from shoal.errors import ConfigError, Conflict, NotFound
from shoal.model.compose_types import ProjectSecret
from shoal.model.deploy_wire import DeployRequest, ProjectInfo, split_qualified
from shoal.model.limits import MAX_REPLICAS

bp = Blueprint("services", __name__, url_prefix="/api/v1")


class ScaleRequest(BaseModel):
    replicas: int = Field(ge=0, le=MAX_REPLICAS)


def _counts(rows: list[Row]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for t in rows:
        if t["desired_state"] != "run":
            continue
        c = out.setdefault(t["service"], {"running": 0, "healthy": 0})
        running = t["observed_state"] == "running"
        c["running"] += running
        c["healthy"] += running and t["health"] in ("none", "healthy")
    return out


def service_view(row: Row, spec: dict[str, Any], counts: dict[str, int]) -> dict[str, Any]:
    ingress = spec.get("ingress")
    return dict(
        jsonable(
            {
                "name": row["short_name"],
                **{k: row[k] for k in ("project", "revision", "mode", "replicas")},
                "running": counts.get("running", 0),
                "healthy": counts.get("healthy", 0),
                "image": spec["template"]["image"],
                "ingress": ingress,
                "rollout": {"state": row["rollout_state"], "message": row["rollout_message"]},
                "updated": row["updated"],
            }
        )
    )


@bp.post("/deploy")
def deploy_compose() -> Response:
    who = caller("operator")
    req = body(DeployRequest)
    with ctx().db.transaction() as conn:
        config = ctx().config
        grant = deploy.grant_of(conn, who.role, str(config.data_dir), config.reserved_ports())
    parsed = deploy.parse(req.compose, req.project, _files(req.files), grant)
    with ctx().db.transaction() as conn:
        own = [s.name for s in parsed.project_secrets]
        specs = secret_scope.scoped(
            conn, parsed.project, deploy.revisions_of(parsed), grant(parsed.project), own
        )
    server_host = ctx().config.ingress_host
    if req.dry_run:
        with ctx().db.transaction() as conn:
            deploy.check_ingress(conn, parsed.project, specs, server_host)
            planned = deploy.changes(conn, parsed.project, specs, req.keep)
        checked = [{"name": name, "revision": 0} for name in sorted(specs)]  # 0: nothing stored
        orphans = [c.name for c in planned if c.change == "prune"]
        changes = [c.model_dump() for c in planned]
        return jsonify(
            project=parsed.project, services=checked, changes=changes, orphans=orphans, dry_run=True
        )

    def store(conn: Conn) -> dict[str, Any]:
        _store_file_secrets(conn, parsed.project, parsed.project_secrets)
        return deploy.store(
            conn, parsed.project, specs, prune=req.prune, keep=req.keep, server_host=server_host
        )

    return jsonify(project=parsed.project, **retrying(ctx().db, store))


def _store_file_secrets(conn: Conn, project: str, found: Sequence[ProjectSecret]) -> None:
    """Secrets with `file:` (their content came with the deploy) as the project's own; a changed
    value wakes the nodes that mount it, an unchanged one writes nothing."""
    vault = ctx().vault
    stored = secrets.ciphertexts(conn, [secrets.key_of(project, s.name) for s in found])
    for secret in found:
        value = base64.b64decode(secret.value_b64)
        old = stored.get(secrets.key_of(project, secret.name))
        if old is not None and vault.open(old) == value:
            continue
        secrets.put(conn, secret.name, vault.seal(value), project=project)
        secrets.touch_users(conn, secret.name, project)


def _files(encoded: dict[str, str]) -> dict[str, bytes]:
    try:
        return {path: base64.b64decode(value, validate=True) for path, value in encoded.items()}
    except (ValueError, binascii.Error) as exc:
        raise ConfigError(f"files: not base64 ({exc})") from None


@bp.get("/services")
def list_services() -> Response:
    caller("viewer")
    with ctx().db.transaction() as conn:
        specs = services.current_specs(conn)
        counts = _counts(tasks.all_tasks(conn))
        rows = services.all_services(conn)
    return jsonify([service_view(r, specs[r["name"]], counts.get(r["name"], {})) for r in rows])


def resolved(conn: Conn, name: str) -> Row:
    """The service a route names: short name (with `?project=` or in one project only) or qualified."""
    return services.resolve(conn, name, request.args.get("project") or None)


@bp.get("/services/<name>")
def inspect_service(name: str) -> Response:
    who = caller("viewer")
    with ctx().db.transaction() as conn:
        view = _inspect(conn, resolved(conn, name)["name"])
    return jsonify(redact.for_viewer(view) if who.role == "viewer" else view)


def _inspect(conn: Conn, name: str) -> dict[str, Any]:
    row = services.require(conn, name)
    rows = tasks.query(conn, service=name)
    spec = services.revision_spec(conn, name, row["revision"])
    view = service_view(row, spec, _counts(rows).get(name, {}))
    view["spec"] = spec.get("source") or spec
    view["tasks"] = jsonable(rows)
    view["unplaced"] = [
        {"replica": u["replica"], "reason": u["reason"]} for u in volumes.unplaced(conn, name)
    ]
    view["serving"] = serving(conn, rows, row["revision"])
    view["revisions"] = jsonable(
        [
            {
                "revision": r["number"],
                "created": r["created"],
                "image": r["spec"]["template"]["image"],
                "change": r["change"],
            }
            for r in services.revisions(conn, name)
        ]
    )
    return view


def serving(conn: Conn, rows: list[Row], revision: int) -> dict[str, Any]:
    """How far the cluster serves a revision's serving replicas: how many are published (in every
    node state from `cluster_version` on) and the nodes up that have not applied that yet."""
    current = [
        r
        for r in rows
        if r["desired_state"] == "run"
        and r["revision"] == revision
        and r["ip"] is not None  # one without an address (host network) is in no DNS record
        and tasks.serves(r["observed_state"], r["health"])
    ]
    marks = [r["published"] for r in current if r["published"] is not None]
    needed = max(marks, default=None)
    lagging = nodes.lagging(conn, needed) if needed is not None else []
    return {"serving": len(current), "published": len(marks), "cluster_version": needed, "lagging": lagging}


@bp.post("/services/<name>/scale")
def scale(name: str) -> Response:
    caller("operator")
    req = body(ScaleRequest)
    with ctx().db.transaction() as conn:
        name = resolved(conn, name)["name"]
        if services.require(conn, name)["mode"] == "global":
            raise Conflict(f"service {name} is global: it runs one replica per node and cannot be scaled")
        services.set_replicas(conn, name, req.replicas)
        events.emit(conn, "service.scaled", name, f"service {name} scaled to {req.replicas}")
        poke_controller(conn)
        return jsonify(_inspect(conn, name))


@bp.post("/services/<name>/restart")
def restart(name: str) -> Response:
    caller("operator")
    with ctx().db.transaction() as conn:
        name = resolved(conn, name)["name"]
        deploy.restart(conn, name)
        return jsonify(_inspect(conn, name))


@bp.post("/services/<name>/rollback")
def rollback(name: str) -> Response:
    caller("operator")
    with ctx().db.transaction() as conn:
        name = resolved(conn, name)["name"]
        deploy.rollback(conn, name)
        return jsonify(_inspect(conn, name))


@bp.delete("/services/<name>")
def remove(name: str) -> Response:
    caller("operator")
    with ctx().db.transaction() as conn:
        deploy.remove(conn, resolved(conn, name)["name"])
    return jsonify(ok=True)


@bp.get("/tasks")
def list_tasks() -> Response:
    caller("viewer")
    node, service = request.args.get("node") or None, request.args.get("service") or None
    with ctx().db.transaction() as conn:
        if service is not None:
            service = _task_filter(conn, service)
        rows = tasks.query(conn, node=node, service=service)
        specs = services.current_specs(conn)
        waiting = [] if node else [u for u in volumes.unplaced(conn) if service in (None, u["service"])]
    return jsonify([_task_view(r, specs) for r in rows] + [_unplaced_view(u, specs) for u in waiting])


def _task_filter(conn: Conn, service: str) -> str:
    """A filter, not an address: a service that is not (or no longer) there has no tasks."""
    try:
        return str(resolved(conn, service)["name"])
    except NotFound:
        project = request.args.get("project")
        return f"{project}.{service}" if project else service


def _task_view(row: Row, specs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    spec = specs.get(row["service"], {})
    view = jsonable(dict(row))
    view["project"], view["service"] = split_qualified(row["service"])
    view["state"] = row["observed_state"]
    view["desired"] = row["desired_state"]
    view["image"] = spec.get("template", {}).get("image", "")
    return dict(view)


def _unplaced_view(row: Row, specs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A replica the scheduler could not place, as a row of `ps` (no node, the reason as message)."""
    project, service = split_qualified(row["service"])
    image = specs.get(row["service"], {}).get("template", {}).get("image", "")
    return {"id": "", "project": project, "service": service, "replica": row["replica"], "node": None,
            "state": "unplaced", "desired": "run", "health": "none", "ip": None, "image": image,
            "message": row["reason"], "updated": row["since"].isoformat()}  # fmt: skip


@bp.get("/projects")
def list_projects() -> Response:
    caller("viewer")
    with ctx().db.transaction() as conn:
        rows = services.all_services(conn)
    by_project: dict[str, list[str]] = {}
    for r in rows:
        by_project.setdefault(r["project"], []).append(r["short_name"])
    found = [ProjectInfo(name=p, services=sorted(names)) for p, names in sorted(by_project.items())]
    return jsonify([p.model_dump() for p in found])


@bp.delete("/projects/<name>")
def remove_project(name: str) -> Response:
    """Remove every service of a project; with `?volumes=1` forget its volumes too (their
    directories stay on their nodes, as `shoal volume rm`; see docs/compose.md)."""
    caller("operator")
    with ctx().db.transaction() as conn:
        rows = services.of_project(conn, name)
        if not rows:
            raise NotFound(f"project {name} not found")
        for r in rows:
            deploy.remove(conn, r["name"])
        gone = volumes.remove_project(conn, name) if request.args.get("volumes") in ("1", "true") else []
        for v in gone:
            events.emit(conn, "volume.removed", f"{name}.{v['name']}", forgotten(name, v["name"], v["node"]))
    removed = [r["short_name"] for r in rows]
    return jsonify(project=name, removed=removed, volumes_removed=[v["name"] for v in gone])

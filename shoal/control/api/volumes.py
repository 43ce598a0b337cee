"""Named volumes (`shoal volume ls | rm`): which node each project's volume is bound to.

A volume is bound by the controller when a replica using it is first placed. Removing one forgets
the binding only: its directory stays on the node (see docs/compose.md); a volume that a service
still mounts is refused.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from shoal.control.api.common import caller, ctx
from shoal.control.store import events, volumes
from shoal.control.store.db import Conn, Row
from shoal.errors import Conflict, NotFound

bp = Blueprint("volumes", __name__, url_prefix="/api/v1/volumes")


def forgotten(project: str, volume: str, node: str) -> str:
    """The event of a removed volume: its data is not touched."""
    return f"volume {volume} of project {project} forgotten; its directory stays on node {node}"


def volume_view(row: Row) -> dict[str, Any]:
    return {
        "project": row["project"],
        "name": row["name"],
        "node": row["node"],
        "size": row["size_bytes"],
        "created": row["created"].isoformat(),
    }


@bp.get("")
def list_volumes() -> Response:
    caller("viewer")
    project = request.args.get("project") or None
    with ctx().db.transaction() as conn:
        rows = volumes.all_volumes(conn)
    return jsonify([volume_view(r) for r in rows if project in (None, r["project"])])


def _resolve(conn: Conn, name: str, project: str | None) -> Row:
    """The volume a user means: `name` in `project`, or the only project's volume of that name."""
    if project:
        row = volumes.get(conn, project, name)
        if row is None:
            raise NotFound(f"volume {name} not found in project {project}")
        return row
    rows = volumes.named(conn, name)
    if len(rows) > 1:
        projects = ", ".join(r["project"] for r in rows)
        raise Conflict(f"volume {name} exists in projects {projects}: name one with -p/--project")
    if not rows:
        raise NotFound(f"volume {name} not found")
    return rows[0]


@bp.delete("/<name>")
def remove_volume(name: str) -> Response:
    caller("operator")
    with ctx().db.transaction() as conn:
        row = _resolve(conn, name, request.args.get("project") or None)
        users = volumes.users(conn, row["project"], row["name"])
        if users:
            raise Conflict(
                f"volume {name} is used by service {', '.join(users)} of project {row['project']}:"
                " remove the service first"
            )
        volumes.remove(conn, row["project"], row["name"])
        events.emit(
            conn,
            "volume.removed",
            f"{row['project']}.{row['name']}",
            forgotten(row["project"], row["name"], row["node"]),
        )
    return jsonify(volume_view(row))

"""Service rows and their immutable revisions."""

from __future__ import annotations

from typing import Any, LiteralString

from psycopg import sql
from psycopg.types.json import Jsonb

from shoal.control.store.db import Conn, Row
from shoal.errors import Conflict, NotFound
from shoal.model.deploy_wire import split_qualified

SERVICE_COLUMNS = (
    "name, project, short_name, revision, mode, replicas, rollout_state, rollout_message, created, updated"
)


def _select(rest: LiteralString) -> sql.Composed:
    return sql.SQL("SELECT {} FROM services ").format(sql.SQL(SERVICE_COLUMNS)) + sql.SQL(rest)


def get(conn: Conn, name: str) -> Row | None:
    return conn.execute(_select("WHERE name = %s"), (name,)).fetchone()


def require(conn: Conn, name: str, shown: str = "") -> Row:
    row = get(conn, name)
    if row is None:
        raise NotFound(shown or f"service {name} not found")
    return row


def all_services(conn: Conn) -> list[Row]:
    return conn.execute(_select("ORDER BY name")).fetchall()


def of_project(conn: Conn, project: str) -> list[Row]:
    return conn.execute(_select("WHERE project = %s ORDER BY name"), (project,)).fetchall()


def resolve(conn: Conn, name: str, project: str | None = None) -> Row:
    """The service a user means: `name` in `project`, a qualified `<project>.<service>`, or a short
    name that exists in exactly one project (in several: a Conflict listing them)."""
    if project:
        return require(conn, f"{project}.{name}", shown=f"service {name} not found in project {project}")
    if split_qualified(name)[0]:
        return require(conn, name)
    rows = conn.execute(_select("WHERE short_name = %s ORDER BY project"), (name,)).fetchall()
    if len(rows) > 1:
        projects = ", ".join(r["project"] for r in rows)
        raise Conflict(f"service {name} exists in projects {projects}: name one with -p/--project")
    if not rows:
        raise NotFound(f"service {name} not found")
    return rows[0]


def put_revision(
    conn: Conn, current: Row | None, name: str, spec: dict[str, Any], *, project: str, change: str
) -> int:
    """Store a new revision of a service (creating the service) and point it there; returns its
    number. `current`: the service's row (None: there is none) as the caller read it in this
    transaction."""
    number = 1 if current is None else _last_revision(conn, name) + 1
    _insert_revision(conn, name=name, project=project, number=number, spec=spec, change=change)
    return number


def _last_revision(conn: Conn, name: str) -> int:
    row = conn.execute("SELECT max(number) AS n FROM revisions WHERE service = %s", (name,)).fetchone()
    return int(row["n"] if row and row["n"] is not None else 0)


def _insert_revision(
    conn: Conn, *, name: str, project: str, number: int, spec: dict[str, Any], change: str
) -> None:
    conn.execute(
        "INSERT INTO services (name, project, short_name, revision, mode, replicas, rollout_state)"
        " VALUES (%s, %s, %s, %s, %s, %s, 'updating') ON CONFLICT (name) DO NOTHING",
        (name, project, split_qualified(name)[1], number, spec["mode"], spec["replicas"]),
    )
    conn.execute(
        "INSERT INTO revisions (service, number, spec, change) VALUES (%s, %s, %s, %s)",
        (name, number, Jsonb(spec), change),
    )
    set_revision(conn, name, number, spec)


def set_revision(conn: Conn, name: str, number: int, spec: dict[str, Any]) -> None:
    """Point the service at a revision (deploy or rollback) and start a rollout to it."""
    conn.execute(
        "UPDATE services SET revision = %s, mode = %s, replicas = %s, rollout_state = 'updating',"
        " rollout_message = %s, updated = now() WHERE name = %s",
        (number, spec["mode"], spec["replicas"], f"rollout of revision {number} started", name),
    )


def revision_spec(conn: Conn, name: str, number: int) -> dict[str, Any]:
    row = conn.execute(
        "SELECT spec FROM revisions WHERE service = %s AND number = %s", (name, number)
    ).fetchone()
    if row is None:
        raise NotFound(f"service {name} has no revision {number}")
    return dict(row["spec"])


def revision_specs(conn: Conn, keys: list[tuple[str, int]]) -> dict[tuple[str, int], dict[str, Any]]:
    """The specs of several (service, revision) pairs."""
    rows = conn.execute(
        "SELECT service, number, spec FROM revisions WHERE (service, number) IN"
        " (SELECT * FROM unnest(%s::text[], %s::int[]))",
        ([k[0] for k in keys], [k[1] for k in keys]),
    ).fetchall()
    return {(r["service"], r["number"]): dict(r["spec"]) for r in rows}


def revisions(conn: Conn, name: str) -> list[Row]:
    return conn.execute(
        "SELECT number, spec, change, created FROM revisions WHERE service = %s ORDER BY number",
        (name,),
    ).fetchall()


def current_specs(conn: Conn) -> dict[str, dict[str, Any]]:
    """The spec of every service's current revision, by service name."""
    rows = conn.execute(
        "SELECT s.name, r.spec FROM services s JOIN revisions r"
        " ON r.service = s.name AND r.number = s.revision"
    ).fetchall()
    return {r["name"]: dict(r["spec"]) for r in rows}


def set_replicas(conn: Conn, name: str, replicas: int) -> None:
    require(conn, name)
    conn.execute("UPDATE services SET replicas = %s, updated = now() WHERE name = %s", (replicas, name))


def set_rollout(conn: Conn, name: str, state: str, message: str) -> None:
    conn.execute(
        "UPDATE services SET rollout_state = %s, rollout_message = %s, updated = now() WHERE name = %s",
        (state, message, name),
    )


def remove(conn: Conn, name: str) -> list[str]:
    """Delete a service with its tasks; returns the nodes that ran them."""
    nodes = conn.execute(
        "SELECT DISTINCT node FROM tasks WHERE service = %s AND node IS NOT NULL", (name,)
    ).fetchall()
    if conn.execute("DELETE FROM services WHERE name = %s", (name,)).rowcount == 0:
        raise NotFound(f"service {name} not found")
    return [r["node"] for r in nodes]

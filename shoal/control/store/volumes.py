"""Named volumes bound to nodes, and the replicas the scheduler could not place (and why).

A volume row is written by the controller the first time a replica that uses the volume is
placed (`bind_many`); the scheduler reads the rows back as placement facts. The `unplaced` rows are
the last tick's unplaceable replicas: `shoal ps` shows them, and each new or changed reason is an
event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from shoal.control.store.db import Conn, Row

Slot = tuple[str, int]  # (qualified service, replica)


def all_volumes(conn: Conn) -> list[Row]:
    return conn.execute(
        "SELECT project, name, node, size_bytes, created FROM volumes ORDER BY project, name"
    ).fetchall()


def get(conn: Conn, project: str, name: str) -> Row | None:
    return conn.execute(
        "SELECT project, name, node, size_bytes, created FROM volumes WHERE project = %s AND name = %s",
        (project, name),
    ).fetchone()


def named(conn: Conn, name: str) -> list[Row]:
    """Every project's volume called `name`."""
    return conn.execute(
        "SELECT project, name, node, size_bytes, created FROM volumes WHERE name = %s ORDER BY project",
        (name,),
    ).fetchall()


def bind_many(conn: Conn, bindings: Iterable[tuple[str, str, str]]) -> None:
    """Bind (project, volume, node) each; a volume already bound keeps its node."""
    rows = list(bindings)
    if rows:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO volumes (project, name, node) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING", rows
            )


def users(conn: Conn, project: str, name: str) -> list[str]:
    """The services of `project` whose current revision mounts the volume (short names)."""
    rows = conn.execute(
        "SELECT s.short_name FROM services s JOIN revisions r ON r.service = s.name AND r.number = s.revision"
        " WHERE s.project = %s AND coalesce(r.spec->'volumes', '[]'::jsonb) ? %s ORDER BY s.short_name",
        (project, name),
    ).fetchall()
    return [r["short_name"] for r in rows]


def remove(conn: Conn, project: str, name: str) -> None:
    conn.execute("DELETE FROM volumes WHERE project = %s AND name = %s", (project, name))


def remove_project(conn: Conn, project: str) -> list[Row]:
    """Forget every volume of a project; the rows removed."""
    return conn.execute(
        "DELETE FROM volumes WHERE project = %s RETURNING project, name, node", (project,)
    ).fetchall()


def unplaced(conn: Conn, service: str | None = None) -> list[Row]:
    """The replicas the last plan could not place (of one service, qualified, or all)."""
    return conn.execute(
        "SELECT service, replica, reason, since FROM unplaced WHERE %(s)s::text IS NULL OR service = %(s)s"
        " ORDER BY service, replica",
        {"s": service},
    ).fetchall()


def set_unplaced(conn: Conn, now: Mapping[Slot, str]) -> list[tuple[Slot, str]]:
    """Make the stored unplaced replicas `now`; the slots whose reason is new or changed."""
    before = {(r["service"], r["replica"]): r["reason"] for r in unplaced(conn)}
    gone = [slot for slot in before if slot not in now]
    fresh = [(slot, reason) for slot, reason in sorted(now.items()) if before.get(slot) != reason]
    with conn.cursor() as cur:
        if gone:
            cur.executemany("DELETE FROM unplaced WHERE service = %s AND replica = %s", gone)
        if fresh:
            cur.executemany(
                "INSERT INTO unplaced (service, replica, reason) VALUES (%s, %s, %s) ON CONFLICT (service,"
                " replica) DO UPDATE SET reason = excluded.reason, since = now()",
                [(service, replica, reason) for (service, replica), reason in fresh],
            )
    return fresh

"""Task rows: a replica slot of a service bound to a node at one generation.

`desired_state` is `run` or `stop`; the observed columns come from agents' status reports.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import LiteralString

from psycopg import sql

from shoal.control.store import events
from shoal.control.store.db import Conn, Row

Observed = tuple[str, str, str]  # a replica as an agent reports it: state, health, message

TASK_COLUMNS = (
    "id, service, replica, generation, revision, node, ip, desired_state, observed_state, health,"
    " message, exit_code, created, updated, published"
)


def _select(rest: LiteralString) -> sql.Composed:
    return sql.SQL("SELECT {} FROM tasks ").format(sql.SQL(TASK_COLUMNS)) + sql.SQL(rest)


def all_tasks(conn: Conn) -> list[Row]:
    return conn.execute(_select("ORDER BY service, replica, generation")).fetchall()


def query(conn: Conn, node: str | None = None, service: str | None = None) -> list[Row]:
    return conn.execute(
        _select(
            "WHERE (%(node)s::text IS NULL OR node = %(node)s)"
            " AND (%(service)s::text IS NULL OR service = %(service)s)"
            " ORDER BY service, replica, generation"
        ),
        {"node": node, "service": service},
    ).fetchall()


def running_on(conn: Conn, node: str) -> list[Row]:
    """Tasks a node must run (with the revision each was created from)."""
    return conn.execute(
        "SELECT t.id, t.service, t.replica, t.generation, t.revision, t.ip, r.created AS rev_created"
        " FROM tasks t JOIN revisions r ON r.service = t.service AND r.number = t.revision"
        " WHERE t.node = %s AND t.desired_state = 'run' ORDER BY t.id",
        (node,),
    ).fetchall()


def serves(observed_state: str, health: str) -> bool:
    """Whether a replica in this observed state takes traffic (the test of `healthy`)."""
    return observed_state == "running" and health in ("none", "healthy")


def healthy(conn: Conn) -> list[Row]:
    """Replicas that serve traffic: desired run, observed running and not unhealthy."""
    return conn.execute(
        "SELECT service, replica, ip, node FROM tasks WHERE desired_state = 'run'"
        " AND observed_state = 'running' AND health IN ('none', 'healthy') AND ip IS NOT NULL"
        " ORDER BY service, replica"
    ).fetchall()


def addressed(conn: Conn) -> list[Row]:
    """Replicas desired running with an address (the members of their networks), by service."""
    return conn.execute(
        "SELECT service, ip, node FROM tasks WHERE desired_state = 'run' AND ip IS NOT NULL"
        " ORDER BY service, ip"
    ).fetchall()


def used_ips(conn: Conn) -> dict[str, set[str]]:
    """Addresses held by tasks (run or still stopping) and by containers their node still reports
    (a removed service's replica in its stop grace has no task row left), by node: a new replica
    given such an address would wait on its node for the old one's grace to end."""
    used: dict[str, set[str]] = {}
    for row in conn.execute(
        "SELECT node, ip FROM tasks WHERE node IS NOT NULL AND ip IS NOT NULL"
        " UNION SELECT s.node, c->>'ip' FROM node_status s,"
        " jsonb_array_elements(CASE jsonb_typeof(s.status->'containers') WHEN 'array'"
        " THEN s.status->'containers' ELSE '[]'::jsonb END) c WHERE c->>'ip' IS NOT NULL"
    ):
        used.setdefault(row["node"], set()).add(row["ip"])
    return used


def free_ip(subnet: str, used: set[str]) -> str | None:
    """The lowest host address of the node subnet not in `used` (.1 is the bridge)."""
    hosts = ipaddress.ip_network(subnet).hosts()
    next(hosts)
    return next((str(h) for h in hosts if str(h) not in used), None)


def insert_many(conn: Conn, new: Sequence[tuple[str, int, int, str, str | None]]) -> list[str]:
    """Insert tasks (service, replica, revision, node, ip), each with a fresh generation; a task's id
    is `<project>-<service>-<replica>-<generation>` (as Compose names containers)."""
    gens = conn.execute("SELECT nextval('task_generation') AS g FROM generate_series(1, %s)", (len(new),))
    rows = [
        (f"{svc.replace('.', '-')}-{replica}-{g['g']}", svc, replica, g["g"], rev, node, ip)
        for (svc, replica, rev, node, ip), g in zip(new, gens.fetchall(), strict=True)
    ]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO tasks (id, service, replica, generation, revision, node, ip)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            rows,
        )
    return [r[0] for r in rows]


def stop(conn: Conn, task_ids: list[str]) -> list[str]:
    """Mark tasks desired stop; returns the nodes affected."""
    rows = conn.execute(
        "UPDATE tasks SET desired_state = 'stop', updated = now() WHERE id = ANY(%s)"
        " AND desired_state = 'run' RETURNING node",
        (task_ids,),
    ).fetchall()
    return sorted({r["node"] for r in rows if r["node"]})


def purge_stopped(conn: Conn, older_than_s: float) -> None:
    conn.execute(
        "DELETE FROM tasks WHERE desired_state = 'stop' AND (node IS NULL OR observed_state IN"
        " ('failed', 'gone') OR updated < now() - make_interval(secs => %s))",
        (older_than_s,),
    )


def news(replica: str, before: Observed, after: Observed) -> tuple[str, str] | None:
    """The event a replica's reported change makes, if any: (kind, message).

    `replica` names it as `deploy` does ("web replica 2 on n1"). Failures carry the agent's own
    words (a refused layer, a failed pull, a start error, the health check's output); a replica
    that keeps failing the same way makes one event per attempt.
    """
    (old_state, old_health, old_message), (state, health, message) = before, after
    if state == "failed" and (old_state != "failed" or old_message != message):
        return "replica.failed", f"{replica} failed: {message or 'no reason given'}"
    if state == "running" and health == "unhealthy" and old_health != "unhealthy":
        return "replica.unhealthy", f"{replica} is unhealthy: {message or 'its health check fails'}"
    if state == "exited" and old_state != "exited":
        return "replica.exited", f"{replica} {message or 'exited'}"
    if state == "running" and old_state != "running":
        return "replica.running", f"{replica} is running"
    if state == "running" and health == "healthy" and old_health != "healthy":
        return "replica.healthy", f"{replica} is healthy"
    return None


def observe_many(conn: Conn, node: str, reports: Sequence[tuple[str, str, str, str]]) -> bool:
    """Record what the agent saw of its tasks: (id, state, health, message) each.

    Only rows that changed are written, each with its event (see `news`); True when a replica
    started or stopped serving (DNS and ingress change): pending to starting changes neither.
    """
    rows = {
        r["id"]: r
        for r in conn.execute(
            "SELECT id, service, replica, observed_state, health, message FROM tasks WHERE node = %s",
            (node,),
        )
    }
    have = {i: (r["observed_state"], r["health"], r["message"]) for i, r in rows.items()}
    changed = [rep for rep in reports if rep[0] in have and have[rep[0]] != rep[1:]]
    if changed:
        with conn.cursor() as cur:
            cur.executemany(
                "UPDATE tasks SET observed_state = %s, health = %s, message = %s, updated = now(),"
                " published = CASE WHEN %s THEN published END WHERE id = %s",
                [(s, h, message, serves(s, h), task_id) for task_id, s, h, message in changed],
            )
    events.emit_many(conn, _events_of(changed, have, rows, node))
    return any(serves(*have[rep[0]][:2]) != serves(rep[1], rep[2]) for rep in changed)


def _events_of(
    changed: Sequence[tuple[str, str, str, str]], had: dict[str, Observed], rows: dict[str, Row], node: str
) -> list[tuple[str, str, str]]:
    """(kind, task id, message) for each change that is news."""
    found = []
    for task_id, state, health, message in changed:
        replica = f"{rows[task_id]['service']} replica {rows[task_id]['replica']} on {node}"
        event = news(replica, had[task_id], (state, health, message))
        if event is not None:
            found.append((event[0], task_id, event[1]))
    return found


def record_exit_codes(conn: Conn, node: str, codes: Sequence[tuple[str, int]]) -> None:
    """Store the exit code of each ended replica of a node: (task id, code); written only when new."""
    if codes:
        with conn.cursor() as cur:
            cur.executemany(
                "UPDATE tasks SET exit_code = %s WHERE id = %s AND node = %s"
                " AND exit_code IS DISTINCT FROM %s",
                [(code, task_id, node, code) for task_id, code in codes],
            )


def mark_missing(conn: Conn, node: str, seen: list[str]) -> bool:
    """Tasks on a node that its report no longer lists: observed gone. True if any changed."""
    rows = conn.execute(
        "UPDATE tasks SET observed_state = CASE WHEN desired_state = 'stop' THEN 'gone'"
        " ELSE 'pending' END, health = 'none', published = NULL, updated = now()"
        " WHERE node = %s AND NOT (id = ANY(%s))"
        " AND observed_state NOT IN ('pending', 'gone') RETURNING id",
        (node, seen),
    ).fetchall()
    return bool(rows)


def allocated(conn: Conn) -> dict[str, dict[str, float]]:
    """Reserved CPUs and memory of the tasks each node must run."""
    rows = conn.execute(
        "SELECT t.node, count(*) AS tasks,"
        " coalesce(sum((r.spec->'template'->'resources'->>'reserve_cpus')::float), 0) AS cpus,"
        " coalesce(sum((r.spec->'template'->'resources'->>'reserve_memory_bytes')::bigint), 0) AS mem"
        " FROM tasks t JOIN revisions r ON r.service = t.service AND r.number = t.revision"
        " WHERE t.desired_state = 'run' AND t.node IS NOT NULL GROUP BY t.node"
    ).fetchall()
    return {
        r["node"]: {"cpus": float(r["cpus"]), "memory_bytes": int(r["mem"]), "tasks": int(r["tasks"])}
        for r in rows
    }

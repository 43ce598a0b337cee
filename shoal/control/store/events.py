"""The event log: what happened in the cluster, for `shoal events` and the SSE stream."""

from __future__ import annotations

from collections.abc import Sequence

from shoal.control.store.db import EVENT_CHANNEL, Conn, Row


def emit(conn: Conn, kind: str, subject: str, message: str) -> None:
    emit_many(conn, [(kind, subject, message)])


def emit_many(conn: Conn, rows: Sequence[tuple[str, str, str]]) -> None:
    """Events (kind, subject, message) in the caller's transaction; streams wake at its commit."""
    if not rows:
        return
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO events (kind, subject, message) VALUES (%s, %s, %s)", rows)
    conn.execute("SELECT pg_notify(%s, '')", (EVENT_CHANNEL,))


def trim(conn: Conn, keep: int) -> None:
    """Keep the newest `keep` events (replicas make one per start and failure: the log is bounded)."""
    conn.execute("DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - %s", (keep,))


def since(conn: Conn, after_id: int, limit: int) -> list[Row]:
    return conn.execute(
        "SELECT id, time, kind, subject, message FROM events WHERE id > %s ORDER BY id LIMIT %s",
        (after_id, limit),
    ).fetchall()


def latest(conn: Conn, limit: int) -> list[Row]:
    rows = conn.execute(
        "SELECT id, time, kind, subject, message FROM events ORDER BY id DESC LIMIT %s", (limit,)
    ).fetchall()
    return list(reversed(rows))

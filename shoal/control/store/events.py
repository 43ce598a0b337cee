"""The event log: what happened in the cluster, for `shoal events` and the SSE stream."""

from __future__ import annotations

from shoal.control.store.db import EVENT_CHANNEL, Conn, Row


def emit(conn: Conn, kind: str, subject: str, message: str) -> None:
    conn.execute("INSERT INTO events (kind, subject, message) VALUES (%s, %s, %s)", (kind, subject, message))
    conn.execute("SELECT pg_notify(%s, '')", (EVENT_CHANNEL,))


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

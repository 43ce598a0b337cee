"""The event log: what happened in the cluster, for `shoal events` and the SSE stream.

An audit trail too: each event made by an API request names its principal (the API sets it for
the request with `acting_as`, so no caller has to pass it along), and replica events (`churn`,
one per start, exit and failure) are trimmed apart from the rest, so a crash-looping service
cannot push token, secret, node or deploy events out of the log.
"""

from __future__ import annotations

import contextvars
from collections.abc import Sequence

from shoal.control.store.db import EVENT_CHANNEL, Conn, Row

CHURN_PREFIX = "replica."
AUDIT_KEPT = 100_000  # events other than replica churn: rare, and what an audit asks for
_acting: contextvars.ContextVar[str] = contextvars.ContextVar("shoal_acting", default="")
_COLUMNS = "id, time, kind, subject, message, principal"


def acting_as(principal: str) -> contextvars.Token[str]:
    """Events emitted from here on in this thread (one API request) name `principal`."""
    return _acting.set(principal)


def stop_acting(token: contextvars.Token[str]) -> None:
    _acting.reset(token)


def emit(conn: Conn, kind: str, subject: str, message: str) -> None:
    emit_many(conn, [(kind, subject, message)])


def emit_many(conn: Conn, rows: Sequence[tuple[str, str, str]]) -> None:
    """Events (kind, subject, message) in the caller's transaction; streams wake at its commit."""
    if not rows:
        return
    who = _acting.get()
    values = [(kind, subject, message, who, kind.startswith(CHURN_PREFIX)) for kind, subject, message in rows]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO events (kind, subject, message, principal, churn) VALUES (%s, %s, %s, %s, %s)",
            values,
        )
    conn.execute("SELECT pg_notify(%s, '')", (EVENT_CHANNEL,))


def trim(conn: Conn, keep: int, keep_audit: int = AUDIT_KEPT) -> None:
    """Keep the newest `keep` replica events and, apart from them, the newest `keep_audit` others."""
    for churn, kept in ((True, keep), (False, keep_audit)):
        conn.execute(
            "DELETE FROM events WHERE churn = %s AND id <= "
            "(SELECT id FROM events WHERE churn = %s ORDER BY id DESC OFFSET %s LIMIT 1)",
            (churn, churn, kept),
        )


def since(conn: Conn, after_id: int, limit: int) -> list[Row]:
    return conn.execute(
        f"SELECT {_COLUMNS} FROM events WHERE id > %s ORDER BY id LIMIT %s",  # noqa: S608 (constant)
        (after_id, limit),
    ).fetchall()


def last_message(conn: Conn, kind: str, subject: str) -> str | None:
    """The message of the newest event of this kind about this subject, if any."""
    row = conn.execute(
        "SELECT message FROM events WHERE kind = %s AND subject = %s ORDER BY id DESC LIMIT 1",
        (kind, subject),
    ).fetchone()
    return None if row is None else str(row["message"])


def latest(conn: Conn, limit: int) -> list[Row]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM events ORDER BY id DESC LIMIT %s",  # noqa: S608 (constant)
        (limit,),
    ).fetchall()
    return list(reversed(rows))

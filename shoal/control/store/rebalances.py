"""Rebalance requests (`shoal service rebalance`): one row per service, the moves it made.

Written by the API (a request) and by the controller (each move it starts, and the end); read by
`GET /services/<name>/rebalance`, which the CLI polls until the state is no longer `running`.
"""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from shoal.control.store.db import Conn, Row

RUNNING = "running"


def request(conn: Conn, service: str) -> None:
    """Start (or restart) a rebalance of `service`: no moves yet."""
    conn.execute(
        "INSERT INTO rebalances (service) VALUES (%s) ON CONFLICT (service) DO UPDATE SET"
        " state = 'running', message = '', moves = '[]', requested = now(), updated = now()",
        (service,),
    )


def get(conn: Conn, service: str) -> Row | None:
    return conn.execute(
        "SELECT service, state, message, moves, requested, updated FROM rebalances WHERE service = %s",
        (service,),
    ).fetchone()


def running(conn: Conn) -> set[str]:
    """The services a rebalance was asked for and has not ended."""
    rows = conn.execute("SELECT service FROM rebalances WHERE state = %s", (RUNNING,)).fetchall()
    return {r["service"] for r in rows}


def add_move(conn: Conn, service: str, move: dict[str, Any], message: str) -> None:
    conn.execute(
        "UPDATE rebalances SET moves = moves || %s, message = %s, updated = now() WHERE service = %s",
        (Jsonb([move]), message, service),
    )


def set_message(conn: Conn, service: str, message: str) -> None:
    conn.execute(
        "UPDATE rebalances SET message = %s, updated = now() WHERE service = %s AND message <> %s",
        (message, service, message),
    )


def finish(conn: Conn, service: str, state: str, message: str) -> None:
    conn.execute(
        "UPDATE rebalances SET state = %s, message = %s, updated = now() WHERE service = %s",
        (state, message, service),
    )

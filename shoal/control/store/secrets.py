"""Secret rows: only ciphertext is stored (Fernet, key in the server's data dir)."""

from __future__ import annotations

from shoal.control.store.db import Conn, Row, notify_nodes
from shoal.errors import NotFound


def put(conn: Conn, name: str, ciphertext: bytes) -> None:
    conn.execute(
        "INSERT INTO secrets (name, ciphertext) VALUES (%s, %s)"
        " ON CONFLICT (name) DO UPDATE SET ciphertext = EXCLUDED.ciphertext, created = now()",
        (name, ciphertext),
    )


def all_secrets(conn: Conn) -> list[Row]:
    return conn.execute("SELECT name, created FROM secrets ORDER BY name").fetchall()


def ciphertexts(conn: Conn, names: list[str]) -> dict[str, bytes]:
    rows = conn.execute("SELECT name, ciphertext FROM secrets WHERE name = ANY(%s)", (names,)).fetchall()
    return {r["name"]: bytes(r["ciphertext"]) for r in rows}


def remove(conn: Conn, name: str) -> None:
    if conn.execute("DELETE FROM secrets WHERE name = %s", (name,)).rowcount == 0:
        raise NotFound(f"secret {name} not found")


def touch_users(conn: Conn, name: str) -> None:
    """A secret changed: wake the nodes whose running tasks mount it."""
    rows = conn.execute(
        "SELECT DISTINCT t.node FROM tasks t JOIN revisions r ON r.service = t.service"
        " AND r.number = t.revision WHERE t.node IS NOT NULL AND t.desired_state = 'run'"
        " AND r.spec->'secrets' ? %s",
        (name,),
    ).fetchall()
    notify_nodes(conn, [r["node"] for r in rows])

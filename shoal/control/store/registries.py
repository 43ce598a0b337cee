"""Registry login rows: host and username in clear, the password only as ciphertext (the vault's
Fernet key, as secrets are). Read by control.desired for the nodes that pull from a host."""

from __future__ import annotations

from shoal.control.store.db import Conn, Row, notify_nodes
from shoal.errors import NotFound
from shoal.model.registry import registry_host


def put(conn: Conn, host: str, username: str, ciphertext: bytes) -> None:
    conn.execute(
        "INSERT INTO registry_logins (host, username, ciphertext) VALUES (%s, %s, %s)"
        " ON CONFLICT (host) DO UPDATE SET username = EXCLUDED.username,"
        " ciphertext = EXCLUDED.ciphertext, created = now()",
        (host, username, ciphertext),
    )


def all_logins(conn: Conn) -> list[Row]:
    """Every login without its password: host, username, created."""
    return conn.execute("SELECT host, username, created FROM registry_logins ORDER BY host").fetchall()


def sealed(conn: Conn, hosts: list[str]) -> dict[str, tuple[str, bytes]]:
    """host → (username, password ciphertext) for those of ``hosts`` that have a login."""
    rows = conn.execute(
        "SELECT host, username, ciphertext FROM registry_logins WHERE host = ANY(%s)", (hosts,)
    ).fetchall()
    return {r["host"]: (r["username"], bytes(r["ciphertext"])) for r in rows}


def remove(conn: Conn, host: str) -> None:
    if conn.execute("DELETE FROM registry_logins WHERE host = %s", (host,)).rowcount == 0:
        raise NotFound(f"no login for registry {host}")


def touch_pullers(conn: Conn, host: str) -> None:
    """A login changed: wake the nodes whose running tasks pull an image from ``host``."""
    rows = conn.execute(
        "SELECT DISTINCT t.node, r.spec->'template'->>'image' AS image FROM tasks t"
        " JOIN revisions r ON r.service = t.service AND r.number = t.revision"
        " WHERE t.node IS NOT NULL AND t.desired_state = 'run'"
    ).fetchall()
    notify_nodes(conn, [r["node"] for r in rows if r["image"] and registry_host(r["image"]) == host])

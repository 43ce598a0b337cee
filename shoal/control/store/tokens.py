"""API tokens and join tokens, stored only as hashes.

A join token also holds what a node joining with it gets (`JoinGrants`: labels, ingress, relay):
an admin's choice, never the joining node's.
"""

from __future__ import annotations

from psycopg.types.json import Jsonb

from shoal.control.store.db import Conn, Row
from shoal.errors import NotFound
from shoal.model.join_wire import JoinGrants


def create(conn: Conn, token_id: str, name: str, role: str, token_hash: str) -> None:
    conn.execute(
        "INSERT INTO tokens (id, name, role, hash) VALUES (%s, %s, %s, %s)",
        (token_id, name, role, token_hash),
    )


def find(conn: Conn, token_hash: str) -> Row | None:
    return conn.execute("SELECT id, name, role FROM tokens WHERE hash = %s", (token_hash,)).fetchone()


def all_tokens(conn: Conn) -> list[Row]:
    return conn.execute("SELECT id, name, role, created FROM tokens ORDER BY created").fetchall()


def remove(conn: Conn, token_id: str) -> None:
    if conn.execute("DELETE FROM tokens WHERE id = %s", (token_id,)).rowcount == 0:
        raise NotFound(f"token {token_id} not found")


def create_join(
    conn: Conn, token_id: str, token_hash: str, ttl_s: float, uses: int, *, grants: JoinGrants | None = None
) -> None:
    given = grants or JoinGrants()
    conn.execute(
        "INSERT INTO join_tokens (id, hash, expires, uses_left, labels, ingress, relay, server)"
        " VALUES (%s, %s, now() + make_interval(secs => %s), %s, %s, %s, %s, %s)",
        (token_id, token_hash, ttl_s, uses, Jsonb(given.labels), given.ingress, given.relay, given.server),
    )


def join_usable(conn: Conn, token_hash: str) -> str | None:
    """The id of a join token valid now (known, unexpired, not used up, not revoked), else None."""
    row = conn.execute(
        "SELECT id FROM join_tokens WHERE hash = %s AND NOT revoked AND uses_left > 0 AND expires > now()",
        (token_hash,),
    ).fetchone()
    return None if row is None else str(row["id"])


def use_join(conn: Conn, token_hash: str) -> JoinGrants | None:
    """Spend one use of a valid join token: what it grants the node, None when it is unknown,
    expired, used up or revoked."""
    row = conn.execute(
        "UPDATE join_tokens SET uses_left = uses_left - 1 WHERE hash = %s AND NOT revoked"
        " AND uses_left > 0 AND expires > now() RETURNING labels, ingress, relay, server",
        (token_hash,),
    ).fetchone()
    if row is None:
        return None
    return JoinGrants(
        labels=dict(row["labels"] or {}),
        ingress=bool(row["ingress"]),
        relay=bool(row["relay"]),
        server=bool(row["server"]),
    )


def revoke_join(conn: Conn, token_id: str) -> None:
    if conn.execute("UPDATE join_tokens SET revoked = true WHERE id = %s", (token_id,)).rowcount == 0:
        raise NotFound(f"join token {token_id} not found")


def all_join(conn: Conn) -> list[Row]:
    return conn.execute(
        "SELECT id, expires, uses_left, revoked, labels, ingress, relay, created FROM join_tokens"
        " ORDER BY created"
    ).fetchall()

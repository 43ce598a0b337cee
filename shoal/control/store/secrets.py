"""Secret rows: only ciphertext is stored (Fernet, key in the server's data dir).

A secret belongs to a project, or is global (project ''). Revisions and node states name one by
its key: `project:name` for a project's, the bare name for a global one (':' is in neither a
project's nor a secret's name), which is also the file name the agent writes it to.
"""

from __future__ import annotations

from shoal.control.store.db import Conn, Row, notify_nodes
from shoal.errors import NotFound


def key_of(project: str, name: str) -> str:
    """The key a revision and a node state use for a secret."""
    return f"{project}:{name}" if project else name


def split_key(key: str) -> tuple[str, str]:
    """(project, name) of a key; ("", name) for a global secret."""
    project, _, name = key.rpartition(":")
    return project, name


def put(conn: Conn, name: str, ciphertext: bytes, project: str = "") -> None:
    conn.execute(
        "INSERT INTO secrets (project, name, ciphertext) VALUES (%s, %s, %s)"
        " ON CONFLICT (project, name) DO UPDATE SET ciphertext = EXCLUDED.ciphertext, created = now()",
        (project, name, ciphertext),
    )


def all_secrets(conn: Conn) -> list[Row]:
    return conn.execute("SELECT name, project, created FROM secrets ORDER BY project, name").fetchall()


def existing(conn: Conn, project: str, names: list[str]) -> set[tuple[str, str]]:
    """Which of `names` exist in `project` and globally, as (project or '', name)."""
    rows = conn.execute(
        "SELECT project, name FROM secrets WHERE name = ANY(%s) AND project IN (%s, '')", (names, project)
    ).fetchall()
    return {(r["project"], r["name"]) for r in rows}


def ciphertexts(conn: Conn, keys: list[str]) -> dict[str, bytes]:
    """The ciphertext of each key that exists."""
    pairs = [split_key(key) for key in keys]
    rows = conn.execute(
        "SELECT project, name, ciphertext FROM secrets WHERE (project, name) IN"
        " (SELECT * FROM unnest(%s::text[], %s::text[]))",
        ([p for p, _ in pairs], [n for _, n in pairs]),
    ).fetchall()
    return {key_of(r["project"], r["name"]): bytes(r["ciphertext"]) for r in rows}


def remove(conn: Conn, name: str, project: str = "") -> None:
    if conn.execute("DELETE FROM secrets WHERE name = %s AND project = %s", (name, project)).rowcount == 0:
        where = f" in project {project}" if project else ""
        raise NotFound(f"secret {name}{where} not found")


def touch_users(conn: Conn, name: str, project: str = "") -> None:
    """A secret changed: wake the nodes whose running tasks mount it."""
    rows = conn.execute(
        "SELECT DISTINCT t.node FROM tasks t JOIN revisions r ON r.service = t.service"
        " AND r.number = t.revision WHERE t.node IS NOT NULL AND t.desired_state = 'run'"
        " AND r.spec->'secrets' ? %s",
        (key_of(project, name),),
    ).fetchall()
    notify_nodes(conn, [r["node"] for r in rows])

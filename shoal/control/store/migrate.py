"""Versioned schema migrations: numbered SQL files in `migrations/`, applied in order.

Run by `shoal server start` before anything else; a database whose schema is newer than this code
knows is refused with a one-line error, never touched.
"""

from __future__ import annotations

import re
from importlib import resources

from shoal.control.store.db import Conn
from shoal.errors import ShoalError

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_LOCK_KEY = 0x5A0A1  # serialises concurrent `server start`s migrating one database


class SchemaTooNew(ShoalError):
    """The database was migrated by a newer shoal."""


def migrations() -> list[tuple[int, str]]:
    """(version, SQL text) of every migration shipped with this code, in order."""
    found = []
    for entry in resources.files("shoal.control.store").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.read_text()))
    return sorted(found)


def latest_version() -> int:
    return migrations()[-1][0]


def current_version(conn: Conn) -> int:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
    row = conn.execute("SELECT max(version) AS v FROM schema_version").fetchone()
    return int(row["v"]) if row and row["v"] is not None else 0


def migrate(conn: Conn) -> int:
    """Bring the schema up to date in one transaction; returns the resulting version."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        have = current_version(conn)
        known = latest_version()
        if have > known:
            raise SchemaTooNew(
                f"database schema version {have} is newer than this shoal knows ({known}); upgrade shoal"
            )
        for version, sql in migrations():
            if version > have:
                conn.execute(sql.encode())
                conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
        return max(have, known)

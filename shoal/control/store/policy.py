"""The node policy's versions: each set adds one; the current one is the highest."""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass

from psycopg.rows import class_row

from shoal.control.store.db import Conn, lock_planning
from shoal.model.policy import PolicyDocument, PolicyError, parse_policy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PolicyRow:
    version: int
    document: str
    author: str
    created: datetime.datetime


_SELECT = "SELECT version, document, author, created FROM node_policies"


def current(conn: Conn) -> PolicyRow | None:
    with conn.cursor(row_factory=class_row(PolicyRow)) as cur:
        return cur.execute(_SELECT + " ORDER BY version DESC LIMIT 1").fetchone()


def history(conn: Conn) -> list[PolicyRow]:
    with conn.cursor(row_factory=class_row(PolicyRow)) as cur:
        return cur.execute(_SELECT + " ORDER BY version DESC").fetchall()


def version(conn: Conn, number: int) -> PolicyRow | None:
    with conn.cursor(row_factory=class_row(PolicyRow)) as cur:
        return cur.execute(_SELECT + " WHERE version = %s", (number,)).fetchone()


def put(conn: Conn, document: str, author: str) -> PolicyRow:
    """A new version; serialised with deploys (the planning lock) so that a deploy checks against
    one version and a set never interleaves with it."""
    lock_planning(conn)
    with conn.cursor(row_factory=class_row(PolicyRow)) as cur:
        found = cur.execute(
            "INSERT INTO node_policies (version, document, author)"
            " SELECT coalesce(max(version), 0) + 1, %s, %s FROM node_policies"
            " RETURNING version, document, author, created",
            (document, author),
        ).fetchone()
    assert found is not None
    return found


def current_document(conn: Conn) -> PolicyDocument:
    """The current policy, parsed; the empty one (safe defaults) when none was set. A stored
    version this server cannot read (a newer server's format) also grants nothing."""
    row = current(conn)
    if row is None:
        return PolicyDocument()
    try:
        return parse_policy(row.document)
    except PolicyError as exc:
        log.error("node policy version %d unreadable, granting nothing: %s", row.version, exc)
        return PolicyDocument()

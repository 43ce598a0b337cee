"""The connection pool and transactions: how the API and controller reach PostgreSQL.

Connection failures become `DatabaseUnavailable` (a one-line ShoalError the API turns into 503).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from shoal.errors import ShoalError

Conn = psycopg.Connection[DictRow]
Row = dict[str, Any]
T = TypeVar("T")
NODE_CHANNEL = "shoal_node"
EVENT_CHANNEL = "shoal_event"
CONTROL_CHANNEL = "shoal_control"
PLANNING_LOCK = 0x5A0A1D  # transaction-level: one plan is computed and applied at a time


class DatabaseUnavailable(ShoalError):
    """PostgreSQL cannot be reached; the message names why."""


class DatabaseBusy(DatabaseUnavailable):
    """PostgreSQL aborted the transaction (deadlock, serialization failure): retry it."""


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class Database:
    """A pool of connections to one PostgreSQL database."""

    def __init__(self, dsn: str, max_size: int = 20, timeout_s: float = 5.0) -> None:
        self.dsn = dsn
        self._timeout = timeout_s
        self.pool: ConnectionPool[Conn] = ConnectionPool(
            dsn,
            min_size=1,
            max_size=max_size,
            kwargs={"row_factory": dict_row, "connect_timeout": 3},
            check=ConnectionPool.check_connection,
            open=False,
            name="shoal",
        )
        self.pool.open(wait=False)

    def close(self) -> None:
        self.pool.close()

    @contextmanager
    def transaction(self) -> Iterator[Conn]:
        """A connection inside one transaction, committed when the block ends without error."""
        try:
            with self.pool.connection(timeout=self._timeout) as conn:
                yield conn
        except PoolTimeout as exc:
            raise DatabaseUnavailable(f"database unavailable: {_one_line(exc)}") from exc
        except (psycopg.errors.TransactionRollback, psycopg.errors.DeadlockDetected) as exc:
            raise DatabaseBusy(f"database busy, retry: {_one_line(exc)}") from exc
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(f"database unavailable: {_one_line(exc)}") from exc


def retrying(db: Database, work: Callable[[Conn], T], attempts: int = 4) -> T:
    """Run `work` in a transaction, again when PostgreSQL aborted it (deadlock, serialization)."""
    for attempt in range(attempts):
        try:
            with db.transaction() as conn:
                return work(conn)
        except DatabaseBusy:
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def connect(dsn: str, autocommit: bool = True) -> Conn:
    """A dedicated connection (listener, leader lock, migrations)."""
    try:
        return psycopg.connect(dsn, autocommit=autocommit, row_factory=dict_row, connect_timeout=3)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"database unavailable: {_one_line(exc)}") from exc


def notify_nodes(conn: Conn, names: Iterable[str]) -> None:
    """Bump each node's state_version and wake its long-polls (delivered at commit)."""
    todo = sorted(set(names))
    if not todo:
        return
    conn.execute(
        "UPDATE nodes SET state_version = state_version + 1 WHERE name IN"
        " (SELECT name FROM nodes WHERE name = ANY(%s) ORDER BY name FOR UPDATE)",
        (todo,),
    )
    conn.execute("SELECT pg_notify(%s, n) FROM unnest(%s::text[]) AS n", (NODE_CHANNEL, todo))


def notify_all_nodes(conn: Conn) -> None:
    """Bump every node: a cluster-wide part of the state (DNS, ingress, peers) changed.

    Serving replicas not yet published are marked published at the new cluster version: every
    node state built from now on lists them (its cluster-wide parts are built at this version or
    later), so a node that applied a state of this cluster version serves them.
    """
    row = conn.execute("UPDATE cluster SET version = version + 1 RETURNING version").fetchone()
    rows = conn.execute(
        "UPDATE nodes SET state_version = state_version + 1 WHERE name IN"
        " (SELECT name FROM nodes ORDER BY name FOR UPDATE) RETURNING name"
    ).fetchall()
    if row is not None:  # tasks after nodes: the order every writer locks them in
        conn.execute(
            "UPDATE tasks SET published = %s WHERE published IS NULL AND desired_state = 'run'"
            " AND observed_state = 'running' AND health IN ('none', 'healthy') AND ip IS NOT NULL",
            (row["version"],),
        )
    conn.execute(
        "SELECT pg_notify(%s, n) FROM unnest(%s::text[]) AS n",
        (NODE_CHANNEL, [r["name"] for r in rows]),
    )


def cluster_changed(conn: Conn) -> None:
    """Peers, DNS or ingress changed: the controller refreshes every node (coalesced, see config)."""
    conn.execute("SELECT pg_notify(%s, 'serving')", (CONTROL_CHANNEL,))


def lock_planning(conn: Conn) -> None:
    """Wait for any other plan being applied (the controller's tick, another deploy) to commit.

    Taken first thing in a transaction that plans, before it locks any row, so two planners
    cannot deadlock and each plans from what the other committed (no replica placed twice).
    """
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (PLANNING_LOCK,))


def poke_controller(conn: Conn) -> None:
    """Wake the controller loop now instead of at its next tick."""
    conn.execute("SELECT pg_notify(%s, '')", (CONTROL_CHANNEL,))


def cluster_version(conn: Conn) -> int:
    row = conn.execute("SELECT version FROM cluster").fetchone()
    return 0 if row is None else int(row["version"])

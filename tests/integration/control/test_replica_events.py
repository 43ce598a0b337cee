"""Replica changes an agent reports become events in the report's transaction; the log is bounded."""

from __future__ import annotations

from shoal.control.store import events, tasks
from shoal.control.store.db import connect
from tests.integration.control.helpers import fresh_database, store_service
from tests.support.server_fixtures import Postgres

REFUSED = "image layer refused: absolute path /etc/passwd"


def test_reported_changes_are_events_in_the_agents_words(postgres: Postgres) -> None:
    dsn = fresh_database(postgres, "n1")
    store_service(dsn, "web", 1)
    reports = [
        ("pulling", "none", ""),
        ("failed", "none", REFUSED),
        ("failed", "none", REFUSED),  # unchanged: no event
        ("running", "starting", ""),
        ("running", "healthy", ""),
        ("running", "unhealthy", "health check: exit 1"),
    ]
    with connect(dsn) as conn:
        [task] = tasks.query(conn, service="p.web")
        first = max((e["id"] for e in events.latest(conn, 1)), default=0)
        for state, health, message in reports:
            tasks.observe_many(conn, "n1", [(task["id"], state, health, message)])
        found = [(e["kind"], e["subject"], e["message"]) for e in events.since(conn, first, 100)]
    assert found == [
        (
            "replica.failed",
            task["id"],
            "p.web replica 1 on n1 failed: image layer refused: absolute path /etc/passwd",
        ),
        ("replica.running", task["id"], "p.web replica 1 on n1 is running"),
        ("replica.healthy", task["id"], "p.web replica 1 on n1 is healthy"),
        ("replica.unhealthy", task["id"], "p.web replica 1 on n1 is unhealthy: health check: exit 1"),
    ]


def test_trim_keeps_the_newest_events(postgres: Postgres) -> None:
    dsn = fresh_database(postgres, "n1")
    with connect(dsn) as conn:
        events.emit_many(conn, [("test.event", f"e{i}", "") for i in range(5)])
        events.trim(conn, 2, keep_audit=2)
        assert [e["subject"] for e in events.latest(conn, 100)] == ["e3", "e4"]


def test_replica_churn_cannot_push_security_events_out(postgres: Postgres) -> None:
    """A crash-looping service makes thousands of replica events; the token event stays."""
    dsn = fresh_database(postgres, "n1")
    with connect(dsn) as conn:
        token = events.acting_as("token abc (ci)")
        events.emit(conn, "token.created", "abc", "admin token ci created")
        events.stop_acting(token)
        events.emit_many(conn, [("replica.exited", f"web-1-{i}", "exit 1") for i in range(3000)])
        events.trim(conn, 1000)
        kept = events.latest(conn, 5000)
    assert [e["kind"] for e in kept].count("replica.exited") == 1000
    audit = [e for e in kept if e["kind"] == "token.created"]
    assert audit and audit[0]["principal"] == "token abc (ci)"
    assert all(e["principal"] == "" for e in kept if e["kind"] == "replica.exited")


def test_an_exit_code_is_stored_once_and_only_for_the_nodes_own_task(postgres: Postgres) -> None:
    dsn = fresh_database(postgres, "n1")
    store_service(dsn, "web", 1)
    with connect(dsn) as conn:
        [task] = tasks.query(conn, service="p.web")
        tasks.record_exit_codes(conn, "n2", [(task["id"], 3)])  # not n2's task: ignored
        assert tasks.query(conn, service="p.web")[0]["exit_code"] is None
        tasks.record_exit_codes(conn, "n1", [(task["id"], 0)])
        assert tasks.query(conn, service="p.web")[0]["exit_code"] == 0

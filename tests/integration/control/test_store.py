"""Schema migrations against a real PostgreSQL: applied once, idempotent, newer schemas refused."""

from __future__ import annotations

import subprocess

import pytest

from shoal.control.store.db import connect
from shoal.control.store.migrate import SchemaTooNew, current_version, latest_version, migrate
from tests.support.server_fixtures import Postgres, ServerFactory, shoal


def test_migrate_creates_schema_once(postgres: Postgres) -> None:
    dsn = postgres.new_database()
    with connect(dsn) as conn:
        assert migrate(conn) == latest_version()
        assert migrate(conn) == latest_version()
        assert current_version(conn) == latest_version()
        tables = {
            r["tablename"] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        }
    assert {"nodes", "services", "revisions", "tasks", "secrets", "tokens", "join_tokens", "events"} <= tables


def test_newer_schema_is_refused_with_one_line(postgres: Postgres) -> None:
    dsn = postgres.new_database()
    with connect(dsn) as conn:
        migrate(conn)
        conn.execute("INSERT INTO schema_version (version) VALUES (999)")
        with pytest.raises(SchemaTooNew, match="999 is newer"):
            migrate(conn)


def test_server_start_refuses_newer_schema(server_factory: ServerFactory) -> None:
    srv = server_factory(start=False)
    with connect(srv.dsn) as conn:
        conn.execute("INSERT INTO schema_version (version) VALUES (999)")
    done = subprocess.run(
        shoal("server", "start", "--data-dir", str(srv.data_dir)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert done.stderr.strip().count("\n") == 0
    assert "newer than this shoal knows" in done.stderr

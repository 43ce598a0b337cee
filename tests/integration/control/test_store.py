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


def test_migration_3_keys_existing_services_by_project(postgres: Postgres) -> None:
    """A database of schema 1 with a service, its revision and a task: after migration 3 the service
    is `<project>.<service>` with its short name, and its revision and task followed the rename."""
    from shoal.control.store import services
    from shoal.control.store.migrate import migrations
    from shoal.errors import Conflict

    dsn = postgres.new_database()
    with connect(dsn) as conn:
        conn.execute("CREATE TABLE schema_version (version integer NOT NULL)")
        conn.execute(migrations()[0][1].encode())
        conn.execute("INSERT INTO schema_version (version) VALUES (1)")
        conn.execute("INSERT INTO services (name, project, revision) VALUES ('db', 'shop', 1)")
        conn.execute("INSERT INTO revisions (service, number, spec) VALUES ('db', 1, '{}')")
        conn.execute(
            "INSERT INTO tasks (id, service, replica, generation, revision) VALUES ('db-1-7', 'db', 1, 7, 1)"
        )
        assert migrate(conn) == latest_version()
        row = services.resolve(conn, "db")
        assert (row["name"], row["project"], row["short_name"]) == ("shop.db", "shop", "db")
        assert conn.execute("SELECT service FROM revisions").fetchone()["service"] == "shop.db"  # type: ignore[index]
        assert conn.execute("SELECT id, service FROM tasks").fetchone() == {
            "id": "db-1-7",
            "service": "shop.db",
        }
        # a second `db` in another project is a different row; the short name alone is then ambiguous
        conn.execute(
            "INSERT INTO services (name, project, short_name, revision) VALUES ('cafe.db', 'cafe', 'db', 1)"
        )
        with pytest.raises(Conflict, match="service db exists in projects cafe, shop"):
            services.resolve(conn, "db")
        assert services.resolve(conn, "db", "cafe")["name"] == "cafe.db"

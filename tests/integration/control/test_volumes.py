"""Named volumes are placement facts in PostgreSQL: bound at first placement, kept when the node
is down or the service scales to 0, listed and removed through the API (viewer lists, operator
removes, refused while used), forgotten with `project rm --volumes`, and backfilled by migration 7
from the replicas that were running before it."""

from __future__ import annotations

from typing import Any

from shoal.control import controller, deploy
from shoal.control.revision import RevisionSpec
from shoal.control.store import events, nodes, tasks, volumes
from shoal.control.store.db import CONTROL_CHANNEL, connect, lock_planning
from shoal.control.store.migrate import current_version, migrate, migrations
from tests.integration.control.helpers import fresh_database, join, put_services, wait_for, web_spec
from tests.support.server_fixtures import Postgres, Server


def _db_spec(replicas: int = 1) -> dict[str, Any]:
    template = {"mounts": [{"kind": "volume", "source": "data", "target": "/data"}]}
    return web_spec("db", replicas, volumes=["data"], template=template)


def _deploy(dsn: str, replicas: int) -> None:
    with connect(dsn, autocommit=False) as conn:
        deploy.store(conn, "p", {"db": RevisionSpec.model_validate(_db_spec(replicas))})
        conn.commit()


def _tick(dsn: str) -> None:
    """One controller planning step, as its tick runs it."""
    with connect(dsn, autocommit=False) as conn:
        lock_planning(conn)
        controller.place(conn)
        conn.commit()


def _where(dsn: str) -> list[str]:
    with connect(dsn) as conn:
        return sorted(t["node"] for t in tasks.query(conn, service="p.db") if t["desired_state"] == "run")


def _set_down(dsn: str, node: str, down: bool) -> None:
    with connect(dsn) as conn:
        conn.execute("UPDATE nodes SET down = %s WHERE name = %s", (down, node))


def test_a_volume_keeps_its_node_through_a_node_loss_and_a_scale_to_zero(postgres: Postgres) -> None:
    dsn = fresh_database(postgres, "n1", "n2", "n3")
    _deploy(dsn, 1)
    [home] = _where(dsn)
    with connect(dsn) as conn:
        assert [(v["project"], v["name"], v["node"]) for v in volumes.all_volumes(conn)] == [
            ("p", "data", home)
        ]
    _set_down(dsn, home, True)
    for _ in range(3):  # the task on the lost node is stopped; nothing starts elsewhere, tick after tick
        _tick(dsn)
        assert _where(dsn) == []
    with connect(dsn) as conn:
        [waiting] = volumes.unplaced(conn)
        said = [e["message"] for e in events.since(conn, 0, 200) if e["kind"] == "replica.unplaced"]
    assert (waiting["service"], waiting["replica"]) == ("p.db", 1)
    assert waiting["reason"] == f"volume data is on node {home} (node down)"
    assert said == [f"p.db replica 1 is unplaced: volume data is on node {home} (node down)"]  # once
    _set_down(dsn, home, False)
    _tick(dsn)
    assert _where(dsn) == [home]
    with connect(dsn) as conn:
        assert volumes.unplaced(conn) == []
    _deploy(dsn, 0)
    _tick(dsn)
    assert _where(dsn) == []
    _deploy(dsn, 2)
    assert _where(dsn) == [home, home]
    with connect(dsn) as conn:  # a removed node took its volumes' data with it: placed afresh
        nodes.remove(conn, home)
    _tick(dsn)
    [elsewhere, same] = _where(dsn)
    assert elsewhere == same
    with connect(dsn) as conn:
        assert [v["node"] for v in volumes.all_volumes(conn)] == [elsewhere] != [home]


def test_volume_ls_and_rm_through_the_api(server: Server) -> None:
    join(server, "v1")
    join(server, "v2")
    put_services(server, "p", {"db": _db_spec()})
    put_services(server, "q", {"db": _db_spec()})
    with server.client() as admin:
        viewer = admin.post("/api/v1/tokens", json={"role": "viewer", "name": "v"}).json()["token"]
        listed = wait_for(lambda: len(admin.get("/api/v1/volumes").json()) == 2, what="bindings")
        assert listed
        rows = admin.get("/api/v1/volumes").json()
        assert [(r["project"], r["name"], r["size"]) for r in rows] == [
            ("p", "data", None),
            ("q", "data", None),
        ]
        assert {r["node"] for r in rows} <= {"v1", "v2"}
        assert admin.get("/api/v1/volumes", params={"project": "q"}).json() == rows[1:]
        ambiguous = admin.delete("/api/v1/volumes/data")
        assert ambiguous.status_code == 409 and "projects p, q" in ambiguous.json()["error"]
        used = admin.delete("/api/v1/volumes/data", params={"project": "p"})
        assert used.status_code == 409
        assert (
            used.json()["error"] == "volume data is used by service db of project p: remove the service first"
        )
        assert admin.delete("/api/v1/services/db", params={"project": "p"}).status_code == 200
        with server.client(viewer) as v:
            assert len(v.get("/api/v1/volumes").json()) == 2
            assert v.delete("/api/v1/volumes/data", params={"project": "p"}).status_code == 403
        gone = admin.delete("/api/v1/volumes/data", params={"project": "p"})
        assert gone.status_code == 200 and gone.json()["node"] == rows[0]["node"]
        assert admin.delete("/api/v1/volumes/data", params={"project": "p"}).status_code == 404
        kept = admin.delete("/api/v1/projects/q").json()
        assert kept["volumes_removed"] == [] and len(admin.get("/api/v1/volumes").json()) == 1
        put_services(server, "q", {"db": _db_spec()})
        removed = admin.delete("/api/v1/projects/q", params={"volumes": 1}).json()
        assert removed["volumes_removed"] == ["data"]
        assert admin.get("/api/v1/volumes").json() == []
        kinds = [e["kind"] for e in admin.get("/api/v1/events", params={"limit": 500}).json()]
    assert kinds.count("volume.removed") == 2


def test_ps_lists_a_replica_that_waits_for_its_volume_node(server: Server) -> None:
    join(server, "w1")
    put_services(server, "p", {"db": _db_spec()})
    with connect(server.dsn) as conn:
        wait_for(lambda: volumes.all_volumes(conn), what="binding")
        conn.execute("UPDATE nodes SET availability = 'drain' WHERE name = 'w1'")
        conn.execute(f"NOTIFY {CONTROL_CHANNEL}")
    with server.client() as admin:
        rows = wait_for(
            lambda: [t for t in admin.get("/api/v1/tasks").json() if t["state"] == "unplaced"],
            what="unplaced",
        )
    assert [(r["service"], r["replica"], r["node"], r["message"]) for r in rows] == [
        ("db", 1, None, "volume data is on node w1 (node draining)")
    ]
    with server.client() as admin:
        shown = admin.get("/api/v1/services/db").json()["unplaced"]
    assert shown == [{"replica": 1, "reason": "volume data is on node w1 (node draining)"}]


def test_migration_binds_the_volumes_of_replicas_already_running(postgres: Postgres) -> None:
    dsn = postgres.new_database()
    spec = RevisionSpec.model_validate(_db_spec()).model_dump_json()
    with connect(dsn) as conn:
        current_version(conn)  # makes the schema_version table
        for version, sql in migrations():
            if version < 7:
                conn.execute(sql.encode())
                conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
        conn.execute(
            "INSERT INTO nodes (name, subnet_index, subnet, credential_hash, agent_secret)"
            " VALUES ('old', 1, '10.210.1.0/24', 'h', 's')"
        )
        conn.execute(
            "INSERT INTO services (name, project, short_name, revision) VALUES ('p.db', 'p', 'db', 1)"
        )
        conn.execute("INSERT INTO revisions (service, number, spec) VALUES ('p.db', 1, %s::jsonb)", (spec,))
        conn.execute(
            "INSERT INTO tasks (id, service, replica, generation, revision, node)"
            " VALUES ('p-db-1-1', 'p.db', 1, 1, 1, 'old')"
        )
        assert migrate(conn) >= 7
        assert [(v["project"], v["name"], v["node"]) for v in volumes.all_volumes(conn)] == [
            ("p", "data", "old")
        ]

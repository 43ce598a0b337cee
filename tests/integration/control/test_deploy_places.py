"""A deploy places its replicas in its own transaction: no controller is running here, and a
node's first state version after the deploy already holds its new containers."""

from __future__ import annotations

import threading

import pytest

from shoal.control import deploy
from shoal.control.revision import RevisionSpec
from shoal.control.store import events, services, tasks
from shoal.control.store.db import connect
from shoal.errors import Conflict
from tests.integration.control.helpers import fresh_database, store_service, web_spec
from tests.support.server_fixtures import Postgres


def test_the_deploys_own_state_version_carries_the_placed_replicas(postgres: Postgres) -> None:
    dsn = fresh_database(postgres, "n1", "n2")
    store_service(dsn, "web", 4)
    with connect(dsn) as conn:
        placed = tasks.query(conn, service="p.web")
    assert (
        sorted((t["node"], t["desired_state"]) for t in placed) == [("n1", "run")] * 2 + [("n2", "run")] * 2
    )
    assert all(t["ip"] for t in placed)


def test_concurrent_deploys_never_place_a_replica_twice(postgres: Postgres) -> None:
    dsn = fresh_database(postgres, "n1")
    threads = [threading.Thread(target=store_service, args=(dsn, f"s{i}", 3)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with connect(dsn) as conn:
        placed = [(t["service"], t["replica"]) for t in tasks.query(conn)]
        ips = [t["ip"] for t in tasks.query(conn)]
    assert sorted(placed) == sorted((f"p.s{i}", r) for i in range(6) for r in (1, 2, 3))
    assert len(set(ips)) == len(ips) == 18


def test_only_a_change_in_who_serves_refreshes_dns_and_ingress(postgres: Postgres) -> None:
    dsn = fresh_database(postgres, "n1")
    store_service(dsn, "web", 1)
    steps = [
        ("starting", "none", False),  # from pending: serves neither before nor after
        ("running", "starting", False),  # its health check has not passed yet
        ("running", "healthy", True),
        ("running", "unhealthy", True),
        ("running", "none", True),
        ("exited", "none", True),
    ]
    with connect(dsn) as conn:
        [task] = tasks.query(conn, service="p.web")
        for state, health, changes_serving in steps:
            assert tasks.observe_many(conn, "n1", [(task["id"], state, health, "")]) is changes_serving


def test_a_deploy_of_the_same_spec_keeps_the_revision_and_a_change_makes_the_next(postgres: Postgres) -> None:
    dsn = fresh_database(postgres, "n1")
    store_service(dsn, "web", 2)
    store_service(dsn, "web", 2)  # the same spec again: no revision, no event
    store_service(dsn, "web", 3)
    with connect(dsn) as conn:
        revision = services.require(conn, "p.web")["revision"]
        deployed = [e["message"] for e in events.since(conn, 0, 100) if e["kind"] == "service.deployed"]
        changes = [r["change"] for r in conn.execute("SELECT change FROM revisions ORDER BY number")]
    assert revision == 2
    assert [m.split(" (")[0] for m in deployed] == ["service p.web revision 1", "service p.web revision 2"]
    assert changes[0] == "created" and len(changes) == 2


def test_a_spec_stored_before_a_field_existed_is_the_same_spec(postgres: Postgres) -> None:
    """After an upgrade that adds a field to the revision spec, the same file makes no revision."""
    dsn = fresh_database(postgres, "n1")
    store_service(dsn, "web", 2)
    with connect(dsn) as conn:
        conn.execute("UPDATE revisions SET spec = spec - 'depends_on' WHERE service = 'p.web'")
    store_service(dsn, "web", 2)
    with connect(dsn) as conn:
        assert services.require(conn, "p.web")["revision"] == 1


def test_a_host_another_project_holds_is_refused_and_nothing_is_stored(postgres: Postgres) -> None:
    dsn = fresh_database(postgres, "n1")
    ingress = {"ingress": {"host": "shop.example.com", "path": "/", "port": 8080}}
    with connect(dsn, autocommit=False) as conn:
        deploy.store(conn, "b", {"shop": RevisionSpec.model_validate(web_spec("shop", **ingress))})
        conn.commit()
    with connect(dsn, autocommit=False) as conn, pytest.raises(Conflict) as refused:
        deploy.store(conn, "a", {"web": RevisionSpec.model_validate(web_spec("web", **ingress))})
    assert str(refused.value) == (
        "services.web.x-shoal.ingress.host: shop.example.com is held by project b (service b.shop)"
    )
    with connect(dsn) as conn:
        assert services.get(conn, "a.web") is None


def test_a_host_network_replica_gets_no_address_and_no_name(postgres: Postgres) -> None:
    from shoal.control.desired import dns_records

    dsn = fresh_database(postgres, "n1")
    spec = web_spec("hostd", replicas=1, template={"security": {"network_mode": "host"}})
    with connect(dsn, autocommit=False) as conn:
        deploy.store(conn, "p", {"hostd": RevisionSpec.model_validate(spec)})
        conn.commit()
    with connect(dsn) as conn:
        [task] = tasks.query(conn, service="p.hostd")
        assert task["node"] == "n1" and task["ip"] is None
        tasks.observe_many(conn, "n1", [(task["id"], "running", "none", "")])
        specs = {k: RevisionSpec.model_validate(v) for k, v in services.current_specs(conn).items()}
        assert dns_records(tasks.healthy(conn), specs) == []

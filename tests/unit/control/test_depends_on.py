"""`depends_on` as start order: the pure rule and the planner holding a service's first start."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from shoal.control import planning
from shoal.control.revision import RevisionSpec
from shoal.control.scheduler.dependencies import DependencyState, waiting_for
from shoal.model.compose_types import Dependency

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
NODES = [
    {
        "name": "a",
        "subnet_index": 1,
        "down": False,
        "availability": "active",
        "labels": {},
        "role": "worker",
        "capacity": {"cpus": 4, "memory_bytes": 8 << 30},
    }
]


def dep(service: str, condition: str = "service_started", required: bool = True) -> Dependency:
    return Dependency.model_validate({"service": service, "condition": condition, "required": required})


@pytest.mark.parametrize(
    ("condition", "state", "why"),
    [
        ("service_started", DependencyState(2, running=1), "waiting for db to be running"),
        ("service_started", DependencyState(2, running=2), None),
        ("service_healthy", DependencyState(1, running=1, healthy=0), "waiting for db to be healthy"),
        ("service_healthy", DependencyState(1, running=1, healthy=1), None),
        (
            "service_completed_successfully",
            DependencyState(1, running=1),
            "waiting for db to complete successfully",
        ),
        ("service_completed_successfully", DependencyState(1, completed=1), None),
        ("service_completed_successfully", DependencyState(0), "waiting for db to complete successfully"),
        ("service_started", DependencyState(0), None),
    ],
)
def test_each_condition_holds_only_on_its_evidence(
    condition: str, state: DependencyState, why: str | None
) -> None:
    assert waiting_for([dep("db", condition)], {"db": state}) == why


def test_a_missing_dependency_holds_only_when_required() -> None:
    assert waiting_for([dep("db")], {}) == "waiting for db, which is not deployed"
    assert waiting_for([dep("db", required=False)], {}) is None


def svc(name: str, depends: list[dict[str, Any]] | None = None, replicas: int = 1) -> planning.PlannedService:
    template = {"id": "", "service": name.split(".")[1], "image": "img"}
    spec = RevisionSpec.model_validate(
        {"template": template, "replicas": replicas, "depends_on": depends or []}
    )
    return planning.PlannedService(name, 1, replicas, spec, "updating")


def task(
    service: str, state: str = "running", health: str = "none", exit_code: int | None = None
) -> dict[str, Any]:
    return {
        "id": f"{service}-1",
        "service": service,
        "replica": 1,
        "node": "a",
        "revision": 1,
        "observed_state": state,
        "health": health,
        "exit_code": exit_code,
        "updated": NOW,
    }


HEALTHY_DB = {"service": "db", "condition": "service_healthy", "required": True}


def test_the_app_waits_for_its_db_to_be_healthy_and_says_so() -> None:
    services = [svc("p.db"), svc("p.app", [HEALTHY_DB])]
    out = planning.plan(NODES, services, [task("p.db", health="starting")], 0)
    assert [s[0] for s in out.start] == []
    assert out.rollout["p.app"] == ("updating", "waiting for db to be healthy")


def test_the_app_starts_once_its_db_is_healthy() -> None:
    services = [svc("p.db"), svc("p.app", [HEALTHY_DB])]
    out = planning.plan(NODES, services, [task("p.db", health="healthy")], 0)
    assert [s[0] for s in out.start] == ["p.app"]


def test_a_dependency_is_looked_up_in_the_services_own_project() -> None:
    services = [svc("q.db"), svc("p.db"), svc("p.app", [HEALTHY_DB])]
    out = planning.plan(
        NODES, services, [task("q.db", health="healthy"), task("p.db", health="unhealthy")], 0
    )
    assert "p.app" not in [s[0] for s in out.start]


def test_a_running_app_is_never_stopped_by_its_dependency() -> None:
    services = [svc("p.db"), svc("p.app", [HEALTHY_DB])]
    out = planning.plan(NODES, services, [task("p.db", health="unhealthy"), task("p.app")], 0)
    assert out.stop == []
    assert "p.app" not in out.rollout


def test_a_one_shot_dependency_must_exit_with_code_zero() -> None:
    done = {"service": "migrate", "condition": "service_completed_successfully", "required": True}
    services = [svc("p.migrate"), svc("p.app", [done])]
    failed = planning.plan(NODES, services, [task("p.migrate", "exited", exit_code=1)], 0)
    assert "p.app" not in [s[0] for s in failed.start]
    ok = planning.plan(NODES, services, [task("p.migrate", "exited", exit_code=0)], 0)
    assert "p.app" in [s[0] for s in ok.start]


def test_the_waiting_message_is_written_once() -> None:
    waiting = planning.PlannedService(
        "p.app", 1, 1, svc("p.app", [HEALTHY_DB]).spec, "updating", "waiting for db to be healthy"
    )
    out = planning.plan(NODES, [svc("p.db"), waiting], [task("p.db", health="starting")], 0)
    assert "p.app" not in out.rollout

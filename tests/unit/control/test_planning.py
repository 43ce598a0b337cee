"""The controller's planning step over the scheduler: rows in, one plan out (pure)."""

from __future__ import annotations

import datetime
from typing import Any

from shoal.control import planning
from shoal.control.revision import RevisionSpec

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def node(name: str, index: int, **extra: Any) -> dict[str, Any]:
    base = {"name": name, "subnet_index": index, "down": False, "availability": "active", "labels": {}}
    return {**base, "role": "worker", "capacity": {"cpus": 4, "memory_bytes": 8 << 30}, **extra}


def service(
    replicas: int = 2, revision: int = 1, state: str = "completed", **spec: Any
) -> planning.PlannedService:
    template = {"id": "", "service": "web", "image": "img"}
    full = RevisionSpec.model_validate({"template": template, "replicas": replicas, **spec})
    return planning.PlannedService("web", revision, replicas, full, state)


def task(
    id_: str, replica: int, node_: str | None, revision: int = 1, state: str = "running"
) -> dict[str, Any]:
    return {
        "id": id_,
        "service": "web",
        "replica": replica,
        "node": node_,
        "revision": revision,
        "observed_state": state,
        "health": "none",
        "updated": NOW,
    }


NODES = [node("a", 1), node("b", 2)]


def test_new_service_is_placed_spread() -> None:
    out = planning.plan(NODES, [service(replicas=4)], [], NOW.timestamp())
    assert sorted(n for *_, n in out.start) == ["a", "a", "b", "b"] and out.stop == []


def test_down_node_tasks_are_replaced() -> None:
    nodes = [node("a", 1, down=True), node("b", 2)]
    out = planning.plan(nodes, [service()], [task("w1", 1, "a"), task("w2", 2, "b")], NOW.timestamp())
    assert out.stop == ["w1"] and out.start == [("web", 1, 1, "b")]


def test_rollout_starts_one_batch_of_new_revision() -> None:
    svc = service(revision=2, state="updating", update={"parallelism": 1, "order": "stop-first"})
    out = planning.plan(NODES, [svc], [task("w1", 1, "a"), task("w2", 2, "b")], NOW.timestamp())
    assert out.stop == ["w1"] and out.start == [("web", 1, 2, "a")]


def test_failed_new_revision_reverts_with_rollback_action() -> None:
    svc = service(revision=2, state="updating", update={"failure_action": "rollback"})
    rows = [task("w1", 1, "a", revision=2, state="failed"), task("w2", 2, "b")]
    out = planning.plan(NODES, [svc], rows, NOW.timestamp())
    assert out.revert == {"web": 1} and out.rollout["web"][0] == "rolling back"


def test_rollout_completes_after_monitor() -> None:
    svc = service(revision=2, state="updating", update={"monitor_s": 5})
    rows = [task("w1", 1, "a", revision=2), task("w2", 2, "b", revision=2)]
    assert "web" not in planning.plan(NODES, [svc], rows, NOW.timestamp() + 1).rollout
    assert planning.plan(NODES, [svc], rows, NOW.timestamp() + 6).rollout["web"][0] == "completed"


def test_a_host_network_service_is_placed_without_an_address() -> None:
    host = service(
        1, template={"id": "", "service": "web", "image": "img", "security": {"network_mode": "host"}}
    )
    out = planning.plan(NODES, [host], [], 0)
    assert [s[0] for s in out.start] == ["web"] and out.addressless == {"web"}
    assert planning.plan(NODES, [service(1)], [], 0).addressless == set()


def test_max_failure_ratio_reaches_the_rollout() -> None:
    """`deploy.update_config.max_failure_ratio` from the file is what the planner tolerates: one
    failed replica of four (25 %) under a ratio of 0.5 neither pauses nor rolls back."""
    from shoal.control.deploy import revision_from
    from shoal.model.compose import parse_compose

    text = (
        "services:\n  web:\n    image: img\n    deploy:\n      replicas: 4\n"
        "      update_config: {max_failure_ratio: 0.5, failure_action: rollback, parallelism: 0}\n"
    )
    spec = revision_from(parse_compose(text, "p").services["web"])
    assert spec.update.max_failure_ratio == 0.5
    svc = planning.PlannedService("web", 2, 4, spec, "updating")
    rows = [task("w1", 1, "a", revision=2, state="failed")]
    rows += [task(f"w{i}", i, "b", revision=2) for i in (2, 3, 4)]
    out = planning.plan(NODES, [svc], rows, NOW.timestamp())
    assert out.revert == {} and out.rollout.get("web", ("",))[0] not in ("rolling back", "paused")


def test_a_new_services_rollout_completes_only_once_its_replicas_run() -> None:
    """The deploy's first tick places the replicas: no "running on 0 replica(s)" then."""
    svc = service(replicas=2, revision=1, state="updating")
    first = planning.plan(NODES, [svc], [], NOW.timestamp())
    assert len(first.start) == 2 and "web" not in first.rollout
    starting = [task("w1", 1, "a", state="pulling"), task("w2", 2, "b")]
    assert "web" not in planning.plan(NODES, [svc], starting, NOW.timestamp() + 6).rollout
    running = [task("w1", 1, "a"), task("w2", 2, "b")]
    done = planning.plan(NODES, [svc], running, NOW.timestamp() + 6).rollout["web"]
    assert done == ("completed", "revision 1 running on 2 replica(s)")


def test_start_first_is_stop_first_when_replicas_publish_host_ports() -> None:
    ports = [{"host_port": 8080, "container_port": 80}]
    template = {"id": "", "service": "web", "image": "img", "ports": ports}
    update = {"parallelism": 1, "order": "start-first"}
    spec = RevisionSpec.model_validate({"template": template, "replicas": 2, "update": update})
    svc = planning.PlannedService("web", 2, 2, spec, "updating")
    out = planning.plan(NODES, [svc], [task("w1", 1, "a"), task("w2", 2, "b")], NOW.timestamp())
    assert out.stop == ["w1"] and out.start == [("web", 1, 2, "a")]  # the old one goes first
    started_first = planning.plan(
        NODES,
        [service(revision=2, state="updating", update=update)],
        [task("w1", 1, "a"), task("w2", 2, "b")],
        NOW.timestamp(),
    )
    assert started_first.stop == [] and started_first.start == [("web", 1, 2, "a")]

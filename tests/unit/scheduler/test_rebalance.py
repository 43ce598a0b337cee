"""The rebalance planner: uneven spreads → moves to an even one, within what placement allows."""

from __future__ import annotations

from dataclasses import replace

from shoal.control.scheduler import Move, ServicePlacement, Snapshot, TaskInfo, rebalance
from tests.unit.scheduler.helpers import counts, node, snap, task
from tests.unit.scheduler.helpers import svc as any_svc

THREE = [node("n2"), node("n3"), node("n4")]


def svc(name: str, replicas: int = 1, **kw: object) -> ServicePlacement:
    """A service at generation 1, the generation `task` gives its tasks."""
    return any_svc(name, replicas, generation=1, **kw)


def piled(service: str = "web", replicas: int = 3, **kw: object) -> list[TaskInfo]:
    """n4 came back empty: its replica was moved to n2."""
    where = {1: "n2", 2: "n3", 3: "n2", 4: "n3", 5: "n2", 6: "n3"}
    return [task(service, r, where[r], seq=r, **kw) for r in range(1, replicas + 1)]


def moved(s: Snapshot, moves: list[Move]) -> Snapshot:
    """The snapshot after the moves completed."""
    tasks = list(s.tasks)
    for m in moves:
        tasks = [replace(t, node=m.target) if t.id == m.task_id else t for t in tasks]
    return replace(s, tasks=tuple(tasks))


def test_uneven_spread_moves_one_replica_back() -> None:
    s = snap(THREE, [svc("web", 3)], piled())
    step = rebalance(s, "web")
    assert step.moves == [Move("web", 3, "web-3-1-n2", "n2", "n4")]
    assert step.waiting == "" and step.stop == [] and not step.balanced


def test_moves_until_even_and_then_nothing() -> None:
    s = snap([*THREE, node("n5")], [svc("web", 6)], piled(replicas=6))
    step = rebalance(s, "web")
    assert [(m.source, m.target) for m in step.moves] == [("n3", "n4"), ("n2", "n5")]
    after = moved(s, step.moves)
    assert sorted(counts(after, "web").values()) == [1, 1, 2, 2]
    assert rebalance(after, "web").balanced


def test_nothing_to_do_when_balanced_or_off_by_one() -> None:
    even = [task("web", r, n) for r, n in [(1, "n2"), (2, "n3"), (3, "n4"), (4, "n2")]]
    assert rebalance(snap(THREE, [svc("web", 4)], even), "web").balanced


def test_constraints_are_respected() -> None:
    nodes = [node("n2"), node("n3"), node("n4", labels={"zone": "home"})]
    s = snap(nodes, [svc("web", 3, constraints=("node.labels.zone!=home",))], piled())
    assert rebalance(s, "web").balanced  # n4 is not allowed: 2 + 1 over n2, n3 is even


def test_published_port_clash_and_reservations_are_respected() -> None:
    port = ("8080/tcp",)
    other = task("other", 1, "n4", ports=port)
    s = snap(THREE, [svc("web", 3, ports=port), svc("other", 1, ports=port)], [*piled(ports=port), other])
    assert rebalance(s, "web").balanced
    full = snap(
        [*THREE[:2], node("n4", memory_bytes=1)], [svc("web", 3, reserve_memory_bytes=1 << 20)], piled()
    )
    assert rebalance(full, "web").balanced


def test_named_volumes_pin_the_service() -> None:
    tasks = [task("db", r, "n2") for r in (1, 2)]
    s = snap(THREE, [svc("db", 2, volumes=("data",))], tasks, volumes={"data": "n2"})
    assert rebalance(s, "db").balanced


def test_global_services_have_nothing_to_move() -> None:
    s = snap(THREE, [svc("agent", mode="global")], [task("agent", 1, "n2"), task("agent", 2, "n2")])
    assert rebalance(s, "agent").balanced


def test_never_more_than_one_in_flight() -> None:
    nodes = [*THREE, node("n5")]
    tasks = [*piled(replicas=6), task("web", 6, "n5", seq=9, state="pending")]
    step = rebalance(snap(nodes, [svc("web", 6)], tasks), "web")
    assert step.moving == [Move("web", 6, "web-6-1-n3", "n3", "n5")]
    assert step.moves and step.waiting == "a move is in flight" and step.stop == []


def test_old_task_stops_once_the_new_one_serves() -> None:
    new = task("web", 3, "n4", seq=9, health="healthy")
    step = rebalance(snap(THREE, [svc("web", 3)], [*piled(), new]), "web")
    assert step.stop == ["web-3-1-n2"] and step.moves == [] and step.moving == []
    unpublished = replace(new, served=False)
    step = rebalance(snap(THREE, [svc("web", 3)], [*piled(), unpublished]), "web")
    assert step.stop == [] and len(step.moving) == 1


def test_failed_new_task_is_stopped_and_the_old_one_stays() -> None:
    new = task("web", 3, "n4", seq=9, health="unhealthy")
    step = rebalance(snap(THREE, [svc("web", 3)], [*piled(), new]), "web")
    assert step.stop == [new.id]
    assert "replica 3 failed on n4 (unhealthy)" in step.failed
    assert step.waiting == "a move is in flight"


def test_no_move_starts_while_a_replica_is_not_ready_or_a_rollout_runs() -> None:
    tasks = piled()
    sick = [replace(tasks[0], health="starting"), *tasks[1:]]
    step = rebalance(snap(THREE, [svc("web", 3)], sick), "web")
    assert step.moves and step.waiting == "replica 1 on n2 is not serving (running)"
    old = [*tasks, replace(tasks[1], generation=0, id="web-2-0-n3")]  # mid-update
    step = rebalance(snap(THREE, [svc("web", 3)], old), "web")
    assert step.waiting == "a rollout is in progress"


def test_spread_preferences_choose_the_target_group() -> None:
    nodes = [
        node("a1", labels={"zone": "a"}),
        node("a2", labels={"zone": "a"}),
        node("b1", labels={"zone": "b"}),
    ]
    tasks = [task("web", 1, "a1"), task("web", 2, "a1"), task("web", 3, "b1")]
    step = rebalance(snap(nodes, [svc("web", 3, preferences=("node.labels.zone",))], tasks), "web")
    assert [(m.source, m.target) for m in step.moves] == [("a1", "a2")]


def test_down_nodes_are_no_targets() -> None:
    nodes = [node("n2"), node("n3"), node("n4", up=False)]
    assert rebalance(snap(nodes, [svc("web", 3)], piled()), "web").balanced

"""Placement decisions, example by example."""

from __future__ import annotations

from dataclasses import replace

from shoal.control.scheduler import Snapshot, VolumeBinding, schedule
from tests.unit.scheduler.helpers import GIB, apply, counts, node, placed, snap, svc, task


def test_spreads_replicas_over_nodes_by_name() -> None:
    plan = schedule(snap([node("b"), node("a"), node("c")], [svc("web", 4)]))
    assert placed(plan) == [("web", 1, "a"), ("web", 2, "b"), ("web", 3, "c"), ("web", 4, "a")]
    assert plan.remove == [] and plan.unplaceable == []
    assert all(p.generation == 0 for p in plan.place)


def test_generation_of_new_tasks_is_the_services() -> None:
    plan = schedule(snap([node("a")], [svc("web", 1, generation=7)]))
    assert [p.generation for p in plan.place] == [7]


def test_prefers_nodes_with_fewer_tasks_in_total() -> None:
    s = snap([node("a"), node("b")], [svc("web", 1), svc("db", 1)], [task("db", 1, "a")])
    assert placed(schedule(s)) == [("web", 1, "b")]


def test_stable_when_nothing_changed() -> None:
    s = snap([node("a"), node("b"), node("c")], [svc("web", 3)])
    after = apply(s, schedule(s))
    # a new, emptier node joins: running tasks stay where they are
    bigger = snap([*after.nodes, node("d")], list(after.services), list(after.tasks))
    assert schedule(bigger).empty


def test_replaces_tasks_on_down_and_draining_and_removed_nodes() -> None:
    nodes = [node("a"), node("b", up=False), node("c", availability="drain"), node("d")]
    tasks = [task("web", 1, "a"), task("web", 2, "b"), task("web", 3, "c"), task("web", 4, "gone")]
    plan = schedule(snap(nodes, [svc("web", 4)], tasks))
    reasons = {r.replica: r.reason for r in plan.remove}
    assert reasons == {2: "node down", 3: "node draining", 4: "node removed"}
    assert placed(plan) == [("web", 2, "d"), ("web", 3, "a"), ("web", 4, "d")]


def test_scale_down_removes_highest_replicas_first() -> None:
    tasks = [task("web", r, n) for r, n in [(1, "a"), (2, "b"), (3, "a"), (4, "b")]]
    plan = schedule(snap([node("a"), node("b")], [svc("web", 2)], tasks))
    assert [(r.replica, r.reason) for r in plan.remove] == [(4, "scaled down"), (3, "scaled down")]
    assert plan.place == []


def test_scale_to_zero_and_removed_service() -> None:
    tasks = [task("web", 1, "a"), task("old", 1, "a")]
    plan = schedule(snap([node("a")], [svc("web", 0)], tasks))
    assert sorted((r.service, r.reason) for r in plan.remove) == [
        ("old", "service removed"),
        ("web", "scaled down"),
    ]


def test_constraints_on_labels_role_and_hostname() -> None:
    nodes = [
        node("a", role="server", labels={"zone": "eu"}),
        node("b", labels={"zone": "eu"}),
        node("c", labels={"zone": "us"}),
    ]
    eu = svc("eu", 2, constraints=("node.labels.zone==eu",))
    workers = svc("wk", 2, constraints=("node.role!=server",))
    pinned = svc("pin", 2, constraints=("node.hostname==c",))
    by_id = svc("byid", 1, constraints=("node.id==b",))
    plan = schedule(snap(nodes, [eu, workers, pinned, by_id]))
    where = {(s, r): n for s, r, n in placed(plan)}
    assert {where["eu", 1], where["eu", 2]} == {"a", "b"}
    assert {where["wk", 1], where["wk", 2]} == {"b", "c"}
    assert where["pin", 1] == where["pin", 2] == "c"
    assert where["byid", 1] == "b"


def test_task_removed_when_its_constraint_no_longer_holds() -> None:
    s = snap([node("a", labels={"zone": "us"}), node("b", labels={"zone": "eu"})],
             [svc("web", 1, constraints=("node.labels.zone==eu",))], [task("web", 1, "a")])  # fmt: skip
    plan = schedule(s)
    assert [r.reason for r in plan.remove] == ["constraint node.labels.zone==eu no longer holds"]
    assert placed(plan) == [("web", 1, "b")]


def test_unplaceable_reasons() -> None:
    assert schedule(snap([], [svc("web", 1)])).unplaceable[0].reason == "no nodes in the cluster"
    down = snap([node("a", up=False), node("b", availability="drain")], [svc("web", 1)])
    assert schedule(down).unplaceable[0].reason == "no node is up and active"
    zoned = snap([node("a")], [svc("web", 2, constraints=("node.labels.zone==eu",))])
    plan = schedule(zoned)
    assert [(u.replica, u.reason) for u in plan.unplaceable] == [
        (1, "no node satisfies node.labels.zone==eu"),
        (2, "no node satisfies node.labels.zone==eu"),
    ]
    big = snap([node("a"), node("b")], [svc("web", 1, reserve_memory_bytes=16 * GIB)])
    assert schedule(big).unplaceable[0].reason == "insufficient memory on 2 eligible node(s)"
    cpu = snap([node("a")], [svc("web", 1, reserve_cpus=8)])
    assert schedule(cpu).unplaceable[0].reason == "insufficient cpu on 1 eligible node(s)"
    bad = snap([node("a")], [svc("web", 1, constraints=("node.os==linux",))])
    assert schedule(bad).unplaceable[0].reason.startswith('unsupported constraint "node.os==linux"')


def test_reservations_count_existing_tasks() -> None:
    nodes = [node("a", memory_bytes=4 * GIB), node("b", memory_bytes=4 * GIB)]
    tasks = [task("db", 1, "a", reserve_memory_bytes=3 * GIB)]
    web = svc("web", 3, reserve_memory_bytes=2 * GIB)
    plan = schedule(snap(nodes, [svc("db", 1, reserve_memory_bytes=3 * GIB), web], tasks))
    assert placed(plan) == [("web", 1, "b"), ("web", 2, "b")]
    assert [(u.replica, u.reason) for u in plan.unplaceable] == [
        (3, "insufficient memory on 2 eligible node(s)")
    ]


def test_unknown_capacity_is_unlimited() -> None:
    plan = schedule(snap([node("a", cpus=0, memory_bytes=0)], [svc("web", 3, reserve_cpus=100)]))
    assert len(plan.place) == 3


def test_removed_tasks_free_their_reservation() -> None:
    nodes = [node("a", memory_bytes=4 * GIB)]
    tasks = [task("old", 1, "a", reserve_memory_bytes=4 * GIB)]
    plan = schedule(snap(nodes, [svc("web", 1, reserve_memory_bytes=4 * GIB)], tasks))
    assert placed(plan) == [("web", 1, "a")]


def test_spread_over_label_values() -> None:
    nodes = [node(n, labels={"zone": n[0]}) for n in ("a1", "a2", "a3", "b1")]
    s = snap(nodes, [svc("web", 4, preferences=("node.labels.zone",))])
    after = apply(s, schedule(s))
    per_zone = {"a": 0, "b": 0}
    for t in after.tasks:
        per_zone[t.node[0]] += 1
    assert per_zone == {"a": 2, "b": 2}
    assert counts(after, "web")["b1"] == 2


def test_nodes_without_the_spread_label_form_their_own_group() -> None:
    nodes = [node("x", labels={"zone": "a"}), node("y"), node("z")]
    plan = schedule(snap(nodes, [svc("web", 2, preferences=("node.labels.zone",))]))
    assert sorted(n for _, _, n in placed(plan)) == ["x", "y"]


def test_named_volume_keeps_replicas_on_its_node() -> None:
    nodes = [node("a"), node("b"), node("c")]
    plan = schedule(snap(nodes, [svc("db", 2, volumes=("data",))], volumes={"data": "b"}))
    assert placed(plan) == [("db", 1, "b"), ("db", 2, "b")]
    assert plan.bind == []
    fresh = schedule(snap(nodes, [svc("db", 3, volumes=("data",))]))
    assert {n for _, _, n in placed(fresh)} == {"a"}
    assert fresh.bind == [VolumeBinding("", "data", "a")]
    grown = snap(nodes, [svc("db", 2, volumes=("data",))], [task("db", 1, "c")])
    assert placed(schedule(grown)) == [("db", 2, "c")]
    assert schedule(grown).bind == [VolumeBinding("", "data", "c")]


def test_volume_node_down_makes_the_replica_unplaceable() -> None:
    nodes = [node("a"), node("b", up=False)]
    plan = schedule(snap(nodes, [svc("db", 1, volumes=("data",))], [task("db", 1, "b")], {"data": "b"}))
    assert [r.reason for r in plan.remove] == ["node down"]
    assert plan.place == []
    assert plan.unplaceable[0].reason == "volume data is on node b (node down)"


def test_volume_binding_outlives_its_tasks() -> None:
    """The node goes down, its task is stopped: the next ticks still know where the volume is."""
    nodes = [node("a"), node("b")]
    first = snap(nodes, [svc("db", 1, volumes=("data",))])
    settled = apply(first, schedule(first))
    (home,) = {t.node for t in settled.tasks}
    other = "a" if home == "b" else "b"
    lost = replace(settled, nodes=(node(home, up=False), node(other)))
    after = apply(lost, schedule(lost))
    assert after.tasks == ()
    for _ in range(3):
        plan = schedule(after)
        assert plan.place == []
        assert [u.reason for u in plan.unplaceable] == [f"volume data is on node {home} (node down)"]
    back = replace(after, nodes=(node(home), node(other)))
    assert placed(schedule(back)) == [("db", 1, home)]


def test_draining_volume_node_keeps_the_replica_unplaced() -> None:
    nodes = [node("a", availability="drain"), node("b")]
    plan = schedule(snap(nodes, [svc("db", 1, volumes=("data",))], [task("db", 1, "a")], {"data": "a"}))
    assert [r.reason for r in plan.remove] == ["node draining"]
    assert [u.reason for u in plan.unplaceable] == ["volume data is on node a (node draining)"]


def test_scale_to_zero_and_back_lands_on_the_volume_node() -> None:
    nodes = [node("a"), node("b"), node("c")]
    first = snap(nodes, [svc("db", 1, volumes=("data",))], [], {"data": "c"})
    running = apply(first, schedule(first))
    assert {t.node for t in running.tasks} == {"c"}
    zero = replace(running, services=(svc("db", 0, volumes=("data",)),))
    stopped = apply(zero, schedule(zero))
    assert stopped.tasks == ()
    again = replace(stopped, services=(svc("db", 2, volumes=("data",)),))
    assert placed(schedule(again)) == [("db", 1, "c"), ("db", 2, "c")]


def test_services_sharing_a_volume_follow_its_first_placement() -> None:
    nodes = [node("a"), node("b")]
    services = [svc("api", 1, volumes=("v",)), svc("db", 1, volumes=("v",)), svc("web", 1)]
    plan = schedule(snap(nodes, services, [task("web", 1, "a")]))
    assert {n for _, _, n in placed(plan)} == {"b"}
    assert plan.bind == [VolumeBinding("", "v", "b")]


def test_volumes_are_per_project() -> None:
    nodes = [node("a"), node("b")]
    services = [
        svc("p.db", 1, volumes=("data",), project="p"),
        svc("q.db", 1, volumes=("data",), project="q"),
    ]
    bound = (VolumeBinding("p", "data", "a"), VolumeBinding("q", "data", "b"))
    plan = schedule(Snapshot(nodes=tuple(nodes), services=tuple(services), volumes=bound))
    assert placed(plan) == [("p.db", 1, "a"), ("q.db", 1, "b")]


def test_volumes_on_two_nodes_make_the_service_unplaceable() -> None:
    plan = schedule(
        snap([node("a"), node("b")], [svc("db", 1, volumes=("x", "y"))], [], {"x": "a", "y": "b"})
    )
    assert plan.place == []
    assert (
        plan.unplaceable[0].reason
        == "its volumes are on different nodes (volume x on node a, volume y on node b)"
    )


def test_task_moved_off_when_its_volume_lives_elsewhere() -> None:
    plan = schedule(
        snap([node("a"), node("b")], [svc("db", 1, volumes=("v",))], [task("db", 1, "a")], {"v": "b"})
    )
    assert [r.reason for r in plan.remove] == ["volume v is on node b"]
    assert placed(plan) == [("db", 1, "b")]


def test_global_mode_one_task_per_eligible_node() -> None:
    nodes = [node("a", slot=3), node("b", slot=1, labels={"edge": "1"}), node("c", slot=2, up=False),
             node("d", slot=4, availability="drain")]  # fmt: skip
    plan = schedule(snap(nodes, [svc("agent", mode="global")]))
    assert placed(plan) == [("agent", 3, "a"), ("agent", 1, "b")]
    edge = schedule(snap(nodes, [svc("edge", mode="global", constraints=("node.labels.edge==1",))]))
    assert placed(edge) == [("edge", 1, "b")]


def test_global_mode_keeps_and_removes() -> None:
    nodes = [node("a", slot=1), node("b", slot=2, availability="drain"), node("c", slot=3)]
    tasks = [task("g", 1, "a"), task("g", 2, "b")]
    plan = schedule(snap(nodes, [svc("g", mode="global")], tasks))
    assert [(r.node, r.reason) for r in plan.remove] == [("b", "node draining")]
    assert placed(plan) == [("g", 3, "c")]


def test_global_mode_capacity() -> None:
    nodes = [node("a", slot=1, memory_bytes=GIB), node("b", slot=2)]
    plan = schedule(snap(nodes, [svc("g", mode="global", reserve_memory_bytes=2 * GIB)]))
    assert placed(plan) == [("g", 2, "b")]
    assert [(u.replica, u.reason) for u in plan.unplaceable] == [(1, "insufficient memory on node a")]


def test_two_generations_of_one_replica_are_left_to_the_rollout() -> None:
    tasks = [task("web", 1, "a", generation=1), task("web", 1, "b", generation=2)]
    assert schedule(snap([node("a"), node("b")], [svc("web", 1, generation=2)], tasks)).empty


def test_deterministic() -> None:
    nodes = [node(n, labels={"zone": z}) for n, z in [("d", "x"), ("a", "y"), ("c", "x"), ("b", "y")]]
    services = [svc("w", 5, preferences=("node.labels.zone",)), svc("v", 3)]
    first = schedule(snap(nodes, services))
    again = schedule(snap(list(reversed(nodes)), list(reversed(services))))
    assert first == again


def test_nested_spread_preferences() -> None:
    layout = [("r1", "eu", "a"), ("r2", "eu", "a"), ("r3", "eu", "b"), ("r4", "us", "c")]
    nodes = [node(n, labels={"region": reg, "rack": rack}) for n, reg, rack in layout]
    s = snap(nodes, [svc("web", 4, preferences=("node.labels.region", "node.labels.rack"))])
    after = apply(s, schedule(s))
    per_node = counts(after, "web")
    assert per_node["r4"] == 2  # half in each region
    assert per_node["r3"] == 1 and per_node["r1"] + per_node["r2"] == 1  # half of eu in each rack


def test_stable_after_a_node_returns() -> None:
    nodes = [node("a"), node("b"), node("c")]
    s = apply(snap(nodes, [svc("web", 3)]), schedule(snap(nodes, [svc("web", 3)])))
    down = snap([node("a"), node("b", up=False), node("c")], [svc("web", 3)], list(s.tasks))
    moved = apply(down, schedule(down))
    back = snap(nodes, [svc("web", 3)], list(moved.tasks))
    assert schedule(back).empty

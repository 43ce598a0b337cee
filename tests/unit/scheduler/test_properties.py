"""Properties of the scheduler over generated clusters (hypothesis)."""

from __future__ import annotations

import random
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.control.scheduler import NodeInfo, ServicePlacement, Snapshot, schedule
from shoal.model.constraints import parse_constraint
from tests.unit.scheduler.helpers import GIB, apply

CONSTRAINTS = ["node.labels.zone==a", "node.labels.zone!=b", "node.role!=server", "node.role==server",
               "node.hostname!=n0", "node.labels.ssd==yes"]  # fmt: skip


@st.composite
def nodes(draw: st.DrawFn) -> list[NodeInfo]:
    count = draw(st.integers(0, 6))
    out = []
    for i in range(count):
        labels = {}
        if draw(st.booleans()):
            labels["zone"] = draw(st.sampled_from("abc"))
        if draw(st.booleans()):
            labels["ssd"] = "yes"
        out.append(
            NodeInfo(
                name=f"n{i}",
                role=draw(st.sampled_from(["server", "worker"])),
                labels=labels,
                availability=draw(st.sampled_from(["active", "active", "active", "drain"])),
                up=draw(st.sampled_from([True, True, True, False])),
                cpus=draw(st.sampled_from([0.0, 1.0, 2.0, 4.0])),
                memory_bytes=draw(st.sampled_from([0, GIB, 2 * GIB, 8 * GIB])),
                slot=i + 1,
            )
        )
    return out


@st.composite
def services(draw: st.DrawFn, reservations: bool = True) -> list[ServicePlacement]:
    out = []
    for i in range(draw(st.integers(1, 4))):
        volume = draw(st.booleans()) and draw(st.booleans())
        out.append(
            ServicePlacement(
                name=f"s{i}",
                mode=draw(st.sampled_from(["replicated", "replicated", "global"])),
                replicas=draw(st.integers(0, 7)),
                generation=draw(st.integers(1, 3)),
                constraints=tuple(draw(st.lists(st.sampled_from(CONSTRAINTS), max_size=2, unique=True))),
                preferences=("node.labels.zone",) if draw(st.booleans()) else (),
                reserve_cpus=draw(st.sampled_from([0.0, 0.5, 1.0])) if reservations else 0.0,
                reserve_memory_bytes=draw(st.sampled_from([0, GIB // 2, GIB])) if reservations else 0,
                volumes=("data",) if volume else (),
            )
        )
    return out


@st.composite
def lived_in(draw: st.DrawFn) -> Snapshot:
    """A cluster that was scheduled once, then changed: nodes went down or drained, services scaled."""
    first = Snapshot(nodes=tuple(draw(nodes())), services=tuple(draw(services())))
    settled = apply(first, schedule(first))
    changed_nodes = tuple(
        replace(n, up=draw(st.booleans()) or n.up, availability=draw(st.sampled_from(["active", "drain"])))
        for n in settled.nodes
    )
    changed_services = tuple(replace(s, replicas=draw(st.integers(0, 7))) for s in settled.services)
    return replace(settled, nodes=changed_nodes, services=changed_services)


snapshots = st.one_of(
    lived_in(), st.builds(lambda n, s: Snapshot(nodes=tuple(n), services=tuple(s)), nodes(), services())
)


def usable(node: NodeInfo) -> bool:
    return node.up and node.availability == "active"


def _reserved(snapshot: Snapshot) -> dict[str, tuple[float, float]]:
    out = {n.name: (0.0, 0.0) for n in snapshot.nodes}
    for t in snapshot.tasks:
        cpus, mem = out[t.node]
        out[t.node] = (cpus + t.reserve_cpus, mem + t.reserve_memory_bytes)
    return out


@settings(max_examples=300, deadline=None)
@given(snapshots)
def test_never_over_capacity(snapshot: Snapshot) -> None:
    after = apply(snapshot, schedule(snapshot))
    for node in after.nodes:
        cpus, mem = _reserved(after)[node.name]
        assert not node.cpus or cpus <= node.cpus + 1e-9
        assert not node.memory_bytes or mem <= node.memory_bytes


@settings(max_examples=300, deadline=None)
@given(snapshots)
def test_never_against_a_constraint_nor_on_a_drained_or_down_node(snapshot: Snapshot) -> None:
    plan = schedule(snapshot)
    after = apply(snapshot, plan)
    by_name = {n.name: n for n in after.nodes}
    specs = {s.name: s for s in after.services}
    for t in after.tasks:
        node = by_name[t.node]
        assert usable(node)
        for c in specs[t.service].constraints:
            assert parse_constraint(c).matches(node.name, node.id, node.role, node.labels)


@settings(max_examples=300, deadline=None)
@given(snapshots)
def test_idempotent(snapshot: Snapshot) -> None:
    plan = schedule(snapshot)
    again = schedule(apply(snapshot, plan))
    assert again.empty
    assert [(u.service, u.replica) for u in again.unplaceable] == [
        (u.service, u.replica) for u in plan.unplaceable
    ]


@settings(max_examples=200, deadline=None)
@given(snapshots)
def test_replica_accounting(snapshot: Snapshot) -> None:
    plan = schedule(snapshot)
    after = apply(snapshot, plan)
    for s in after.services:
        if s.mode != "replicated":
            continue
        have = {t.replica for t in after.tasks if t.service == s.name}
        missing = {u.replica for u in plan.unplaceable if u.service == s.name}
        assert have | missing == set(range(1, s.replicas + 1))
        assert not have & missing


@settings(max_examples=200, deadline=None)
@given(snapshots, st.randoms(use_true_random=False))
def test_deterministic(snapshot: Snapshot, rnd: random.Random) -> None:
    node_list, service_list, task_list = list(snapshot.nodes), list(snapshot.services), list(snapshot.tasks)
    rnd.shuffle(node_list)
    rnd.shuffle(service_list)
    rnd.shuffle(task_list)
    volumes = list(snapshot.volumes)
    rnd.shuffle(volumes)
    other = Snapshot(tuple(node_list), tuple(service_list), tuple(task_list), tuple(volumes))
    assert schedule(snapshot) == schedule(other)


@settings(max_examples=300, deadline=None)
@given(nodes(), services(reservations=False))
def test_spread_as_even_as_allowed(node_list: list[NodeInfo], service_list: list[ServicePlacement]) -> None:
    snapshot = Snapshot(nodes=tuple(node_list), services=tuple(service_list))
    after = apply(snapshot, schedule(snapshot))
    for s in after.services:
        if s.mode != "replicated" or s.volumes or s.preferences:
            continue
        constraints = [parse_constraint(c) for c in s.constraints]
        eligible = [
            n.name for n in after.nodes
            if usable(n) and all(c.matches(n.name, n.id, n.role, n.labels) for c in constraints)
        ]  # fmt: skip
        per_node = [sum(1 for t in after.tasks if t.service == s.name and t.node == n) for n in eligible]
        if per_node:
            assert max(per_node) - min(per_node) <= 1


@settings(max_examples=200, deadline=None)
@given(nodes(), services(reservations=False))
def test_label_spread_as_even_as_allowed(
    node_list: list[NodeInfo], service_list: list[ServicePlacement]
) -> None:
    snapshot = Snapshot(nodes=tuple(node_list), services=tuple(service_list))
    after = apply(snapshot, schedule(snapshot))
    for s in after.services:
        if s.mode != "replicated" or s.volumes or not s.preferences:
            continue
        constraints = [parse_constraint(c) for c in s.constraints]
        eligible = [
            n for n in after.nodes
            if usable(n) and all(c.matches(n.name, n.id, n.role, n.labels) for c in constraints)
        ]  # fmt: skip
        zones: dict[str, int] = {n.labels.get("zone", ""): 0 for n in eligible}
        where = {n.name: n.labels.get("zone", "") for n in eligible}
        for t in after.tasks:
            if t.service == s.name:
                zones[where[t.node]] += 1
        if zones:
            assert max(zones.values()) - min(zones.values()) <= 1


@settings(max_examples=300, deadline=None)
@given(snapshots)
def test_a_bound_volume_holds_its_replicas_on_its_node(snapshot: Snapshot) -> None:
    plan = schedule(snapshot)
    bound = {(v.project, v.name): v.node for v in snapshot.volumes}
    for b in plan.bind:
        assert (b.project, b.name) not in bound  # a binding is never moved
        bound[(b.project, b.name)] = b.node
    services = {s.name: s for s in snapshot.services}
    for t in apply(snapshot, plan).tasks:
        s = services[t.service]
        if s.mode == "replicated":
            assert all(bound[(s.project, v)] == t.node for v in s.volumes)

"""Properties of the rebalance planner over generated spreads (hypothesis)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.control.scheduler import Snapshot, schedule
from shoal.control.scheduler.rebalance import rebalance_all
from tests.unit.scheduler.helpers import node, snap, svc, task

CONSTRAINTS = ["", "node.labels.zone==a", "node.hostname!=n0"]


@st.composite
def spreads(draw: st.DrawFn) -> Snapshot:
    """Two services of 0..9 replicas piled anywhere on 1..6 nodes (some labelled, some down)."""
    count = draw(st.integers(1, 6))
    nodes = [
        node(
            f"n{i}",
            labels={"zone": draw(st.sampled_from("ab"))},
            up=draw(st.sampled_from([True] * 5 + [False])),
        )
        for i in range(count)
    ]
    services, tasks = [], []
    for name in ("web", "api"):
        constraint = draw(st.sampled_from(CONSTRAINTS))
        services.append(
            svc(name, draw(st.integers(0, 9)), generation=1, constraints=(constraint,) if constraint else ())
        )
        for replica in range(1, services[-1].replicas + 1):
            tasks.append(task(name, replica, f"n{draw(st.integers(0, count - 1))}", seq=replica))
    return snap(nodes, services, tasks)


def settled(s: Snapshot) -> Snapshot:
    """What placement makes of it first (tasks on down or disallowed nodes replaced)."""
    plan = schedule(s)
    gone = {r.task_id for r in plan.remove}
    new = [task(p.service, p.replica, p.node, seq=100 + p.replica) for p in plan.place]
    return replace(s, tasks=tuple(t for t in s.tasks if t.id not in gone) + tuple(new))


@settings(max_examples=300, deadline=None)
@given(spreads())
def test_moves_end_even_within_the_allowed_nodes_and_change_nothing_else(raw: Snapshot) -> None:
    s = settled(raw)
    steps = rebalance_all(s)
    assert rebalance_all(s) == steps  # planning left the shared running view as it found it
    for name, step in steps.items():
        tasks = list(s.tasks)
        for move in step.moves:
            tasks = [replace(t, node=move.target) if t.id == move.task_id else t for t in tasks]
        after = replace(s, tasks=tuple(tasks))
        assert schedule(after).empty, "a move went where placement would not keep it"
        assert rebalance_all(after)[name].moves == [], "the moves did not end even"
        assert len(step.moves) == len({m.replica for m in step.moves}), "a replica moved twice"

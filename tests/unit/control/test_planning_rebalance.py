"""Rebalancing inside the controller's planning step: what a finished move stops, when a replica
counts as served, and which services may not move this tick (pure, rows in)."""

from __future__ import annotations

from typing import Any

from shoal.control import planning
from tests.unit.control.test_planning import node, service, task

NODES = [node("a", 1, applied_cluster_version=7), node("b", 2, applied_cluster_version=7), node("c", 3)]


def moved(published: int | None, **extra: Any) -> list[dict[str, Any]]:
    """Replica 2 moving from a to c: its new task (generation 9) runs there, published at `published`."""
    rows = [task("w1", 1, "a"), task("w2", 2, "a"), task("w2b", 2, "c")]
    for row, seq in zip(rows, (1, 2, 9), strict=True):
        row["generation"], row["published"] = seq, 5
    rows[2] |= {"published": published, **extra}
    return rows


def test_uneven_service_gets_a_move_and_an_auto_flag() -> None:
    out = planning.plan(NODES, [service(rebalance="auto")], [task("w1", 1, "a"), task("w2", 2, "a")], 0.0)
    assert [(m.replica, m.source, m.target) for m in out.rebalance["web"].moves] == [(2, "a", "b")]
    assert out.rebalance_auto == {"web"} and out.rebalance_busy == set() and out.revisions == {"web": 1}


def test_old_task_stops_once_every_node_up_applied_the_new_ones_publication() -> None:
    assert planning.plan(NODES, [service()], moved(published=7), 0.0).stop == ["w2"]
    assert planning.plan(NODES, [service()], moved(published=8), 0.0).stop == []  # a, b lag
    assert planning.plan(NODES, [service()], moved(published=None), 0.0).stop == []


def test_failed_new_task_is_stopped() -> None:
    out = planning.plan(NODES, [service()], moved(published=None, observed_state="failed"), 0.0)
    assert out.stop == ["w2b"] and "failed on c" in out.rebalance["web"].failed


def test_service_being_rolled_out_is_busy() -> None:
    out = planning.plan(NODES, [service(state="updating")], moved(published=7), 0.0)
    assert out.rebalance_busy == {"web"} and out.stop == []

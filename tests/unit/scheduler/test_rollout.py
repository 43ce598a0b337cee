"""The rolling-update state machine, tick by tick."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from shoal.control.scheduler import RolloutInput, RolloutTask, Step, next_step
from shoal.control.scheduler.rollout import ready
from shoal.model.compose import UpdatePolicy


def t(replica: int, generation: int, state: str = "running", health: str = "none", since: float = 0.0,
      node: str = "n1") -> RolloutTask:  # fmt: skip
    ready_since = since if state == "running" and health in ("none", "healthy") else None
    return RolloutTask(f"w-{replica}-{generation}", replica, generation, node, state, health, ready_since)


def step(tasks: list[RolloutTask], now: float = 100.0, replicas: int = 3, **policy: Any) -> Step:
    inp = RolloutInput(UpdatePolicy(**policy), 2, tuple(range(1, replicas + 1)), tuple(tasks), now)
    return next_step(inp)


class Cluster:
    """Applies steps the way the controller and agents would: new tasks start, then become ready."""

    def __init__(self, replicas: int, **policy: Any) -> None:
        self.tasks = [t(r, 1) for r in range(1, replicas + 1)]
        self.replicas = replicas
        self.policy = UpdatePolicy(**policy)
        self.now = 100.0
        self.min_ready = replicas

    def tick(self, fail: set[int] | None = None) -> Step:
        inp = RolloutInput(self.policy, 2, tuple(range(1, self.replicas + 1)), tuple(self.tasks), self.now)
        s = next_step(inp)
        self.tasks = [x for x in self.tasks if x.id not in s.stop]
        self.tasks += [RolloutTask(f"w-{n.replica}-2", n.replica, 2, n.node_hint) for n in s.start]
        self.min_ready = min(self.min_ready, sum(ready(x) for x in self.tasks))
        self.now += 1.0
        self.tasks = [self._progress(x, fail or set()) for x in self.tasks]
        return s

    def _progress(self, x: RolloutTask, fail: set[int]) -> RolloutTask:
        if x.generation == 2 and x.state == "pending":
            if x.replica in fail:
                return replace(x, state="running", health="unhealthy")
            return replace(x, state="running", health="healthy", ready_since=self.now)
        return x


def test_stop_first_parallelism_one_runs_to_done() -> None:
    c = Cluster(3, monitor_s=2.0)
    first = c.tick()
    assert first.outcome == "progress"
    assert [(s.replica, s.generation, s.node_hint) for s in first.start] == [(1, 2, "n1")]
    assert first.stop == ["w-1-1"]
    outcomes = [c.tick().outcome for _ in range(8)]
    assert outcomes[-1] == "done"
    assert {x.generation for x in c.tasks} == {2} and len(c.tasks) == 3
    assert c.min_ready == 2  # stop-first takes one replica down at a time


def test_start_first_keeps_capacity() -> None:
    c = Cluster(3, order="start-first", monitor_s=0.0)
    first = c.tick()
    assert [s.replica for s in first.start] == [1] and first.stop == []
    for _ in range(10):
        if c.tick().outcome == "done":
            break
    assert {x.generation for x in c.tasks} == {2} and len(c.tasks) == 3
    assert c.min_ready == 3  # never fewer ready replicas than asked for


def test_start_first_stops_old_once_new_is_ready() -> None:
    tasks = [t(1, 1), t(1, 2, state="pending"), t(2, 1), t(3, 1)]
    assert step(tasks, order="start-first").outcome == "waiting"
    tasks[1] = t(1, 2, since=99.0)
    s = step(tasks, order="start-first")
    assert s.stop == ["w-1-1"] and [x.replica for x in s.start] == [2]


def test_parallelism_two() -> None:
    s = step([t(r, 1) for r in range(1, 6)], replicas=5, parallelism=2)
    assert [x.replica for x in s.start] == [1, 2]
    assert s.stop == ["w-1-1", "w-2-1"]
    half = [t(1, 2, state="pending"), t(2, 2, since=99.0), t(3, 1), t(4, 1), t(5, 1)]
    assert [x.replica for x in step(half, replicas=5, parallelism=2).start] == [3]


def test_parallelism_zero_updates_everything_at_once() -> None:
    s = step([t(r, 1) for r in range(1, 5)], replicas=4, parallelism=0)
    assert [x.replica for x in s.start] == [1, 2, 3, 4]


def test_delay_between_batches() -> None:
    tasks = [t(1, 2, since=95.0), t(2, 1), t(3, 1)]
    waiting = step(tasks, now=100.0, delay_s=10.0)
    assert waiting.outcome == "waiting" and waiting.start == []
    assert "next batch in 5.0s" in waiting.message
    assert [x.replica for x in step(tasks, now=105.0, delay_s=10.0).start] == [2]


def test_monitor_before_done() -> None:
    tasks = [t(1, 2, since=90.0), t(2, 2, since=98.0), t(3, 2, since=97.0)]
    monitoring = step(tasks, now=100.0, monitor_s=5.0)
    assert monitoring.outcome == "waiting" and "monitoring" in monitoring.message
    done = step(tasks, now=103.0, monitor_s=5.0)
    assert done.outcome == "done" and done.message == "revision 2 running on 3 replica(s)"


def test_failure_pauses() -> None:
    tasks = [t(1, 2, health="unhealthy"), t(2, 1), t(3, 1)]
    s = step(tasks)
    assert (s.outcome, s.failure_action, s.start, s.stop) == ("failed", "pause", [], [])
    assert s.message == "1 of 3 replica(s) of generation 2 failed (replica 1 unhealthy on n1); action: pause"


def test_failure_rollback_decision() -> None:
    c = Cluster(4, failure_action="rollback", parallelism=2)
    c.tick(fail={2})
    s = c.tick()
    assert (s.outcome, s.failure_action) == ("failed", "rollback")


def test_exited_task_is_a_failure() -> None:
    s = step([t(1, 2, state="exited"), t(2, 1), t(3, 1)], failure_action="rollback")
    assert (s.outcome, s.failure_action) == ("failed", "rollback")
    assert "replica 1 exited" in s.message


def test_max_failure_ratio_tolerates_some() -> None:
    tasks = [t(1, 2, state="failed"), t(2, 1), t(3, 1), t(4, 1)]
    tolerated = step(tasks, replicas=4, max_failure_ratio=0.25, parallelism=2)
    assert tolerated.outcome == "progress" and [x.replica for x in tolerated.start] == [2]
    tasks[1] = t(2, 2, state="failed")
    assert step(tasks, replicas=4, max_failure_ratio=0.25).outcome == "failed"


def test_continue_ignores_failures() -> None:
    tasks = [t(1, 2, state="failed"), t(2, 1), t(3, 1)]
    s = step(tasks, failure_action="continue")
    assert s.outcome == "progress" and [x.replica for x in s.start] == [2]


def test_continue_start_first_replaces_the_old_task_of_a_failed_replica() -> None:
    tasks = [t(1, 1), t(1, 2, state="failed"), t(2, 1), t(3, 1)]
    s = step(tasks, failure_action="continue", order="start-first")
    assert s.stop == ["w-1-1"] and [x.replica for x in s.start] == [2]


def test_rollback_is_an_update_to_the_old_generation() -> None:
    # generation 2 failed; the controller rolls back: generation 1 is now the target
    tasks = [t(1, 2, health="unhealthy"), t(2, 1, since=50.0), t(3, 1, since=50.0)]
    inp = RolloutInput(UpdatePolicy(), 1, (1, 2, 3), tuple(tasks), 100.0)
    s = next_step(inp)
    assert s.outcome == "progress"
    assert [(x.replica, x.generation) for x in s.start] == [(1, 1)] and s.stop == ["w-1-2"]


def test_replicas_outside_the_wanted_set_are_ignored() -> None:
    tasks = [t(1, 2, since=10.0), t(2, 2, since=10.0), t(3, 1), t(4, 1)]
    assert step(tasks, replicas=2).outcome == "done"


def test_nothing_to_do_is_done() -> None:
    assert step([]).outcome == "done"

"""Rolling updates driven to the end over generated policies and start-up times (hypothesis)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.control.scheduler import RolloutInput, RolloutTask, next_step
from shoal.control.scheduler.rollout import ready
from shoal.model.compose import UpdatePolicy

policies = st.builds(
    UpdatePolicy,
    parallelism=st.integers(0, 3),
    delay_s=st.sampled_from([0.0, 1.0, 3.0]),
    monitor_s=st.sampled_from([0.0, 2.0]),
    order=st.sampled_from(["stop-first", "start-first"]),
)


@settings(max_examples=200, deadline=None)
@given(policies, st.integers(1, 6), st.lists(st.integers(0, 4), min_size=6, max_size=6))
def test_update_completes_within_its_bounds(policy: UpdatePolicy, replicas: int, startup: list[int]) -> None:
    tasks = [RolloutTask(f"old-{r}", r, 1, "n", "running", "healthy", 0.0) for r in range(1, replicas + 1)]
    born: dict[str, float] = {}
    now, outcome = 10.0, ""
    for _ in range(200):
        step = next_step(RolloutInput(policy, 2, tuple(range(1, replicas + 1)), tuple(tasks), now))
        outcome = step.outcome
        if outcome == "done":
            break
        assert outcome in ("progress", "waiting")
        tasks = [t for t in tasks if t.id not in step.stop]
        for s in step.start:
            tasks.append(RolloutTask(f"new-{s.replica}", s.replica, 2, s.node_hint))
            born[f"new-{s.replica}"] = now
        starting = {t.replica for t in tasks if t.generation == 2 and not ready(t)}
        assert len(starting) <= (policy.parallelism or replicas)
        if policy.order == "start-first":
            assert sum(ready(t) for t in tasks) + len(starting) >= replicas
        assert len({t.replica for t in tasks}) == replicas  # every replica keeps a task
        now += 1.0
        tasks = [_grow(t, born, startup, now) for t in tasks]
    assert outcome == "done"
    assert sorted((t.replica, t.generation) for t in tasks) == [(r, 2) for r in range(1, replicas + 1)]


def _grow(t: RolloutTask, born: dict[str, float], startup: list[int], now: float) -> RolloutTask:
    if t.generation == 2 and not ready(t) and now - born[t.id] >= startup[t.replica - 1]:
        return replace(t, state="running", health="healthy", ready_since=now)
    return t


@settings(max_examples=200, deadline=None)
@given(policies, st.integers(1, 6), st.integers(1, 6))
def test_start_first_never_drops_a_ready_replica(policy: UpdatePolicy, replicas: int, slow: int) -> None:
    policy = policy.model_copy(update={"order": "start-first"})
    tasks = [RolloutTask(f"old-{r}", r, 1, "n", "running", "healthy", 0.0) for r in range(1, replicas + 1)]
    now = 10.0
    for _ in range(100):
        step = next_step(RolloutInput(policy, 2, tuple(range(1, replicas + 1)), tuple(tasks), now))
        tasks = [t for t in tasks if t.id not in step.stop]
        tasks += [RolloutTask(f"new-{s.replica}-{now}", s.replica, 2, "n") for s in step.start]
        assert sum(ready(t) for t in tasks) >= replicas
        now += 1.0
        if int(now) % slow == 0:
            tasks = [replace(t, state="running", ready_since=now) if not ready(t) else t for t in tasks]
        if step.outcome == "done":
            break

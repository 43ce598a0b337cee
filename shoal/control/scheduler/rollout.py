"""Rolling updates, pure: the service's tasks now → the next step of the update (`next_step`).

The controller calls it every tick while a service has tasks of an older generation, or until it
says "done". It needs no memory between ticks: everything is read from the tasks (their generation,
state, health and when they became ready) and `now`.

Rules (Swarm's update_config): replicas are updated in batches of `parallelism` (0: all at once),
lowest replica first. `stop-first` stops a replica's old task as its new one is started;
`start-first` starts the new task first and stops the old one once the new one is ready (running
and healthy, or running with no health check), so capacity never drops. The next batch starts
when the previous one is ready and `delay` has passed since it became ready. New tasks that fail
(exited, failed or unhealthy) while the update runs count as failures; more than
`max_failure_ratio` of the replicas failing ends the update with `failure_action` (pause or
rollback: the controller acts; rolling back is another update, to the old generation, under
rollback_config). The update is done when no old task is left and the last new task has been
ready for `monitor`.
"""

from __future__ import annotations

from shoal.control.scheduler.rollout_types import RolloutInput, RolloutTask, StartTask, Step

FAILED_STATES = ("failed", "exited")


def ready(task: RolloutTask) -> bool:
    return task.state == "running" and task.health in ("none", "healthy")


def failed(task: RolloutTask) -> bool:
    return task.state in FAILED_STATES or task.health == "unhealthy"


def next_step(inp: RolloutInput) -> Step:
    """What to start and stop now, or whether to wait, stop (failed) or finish."""
    wanted = set(inp.replicas)
    tasks = sorted((t for t in inp.tasks if t.replica in wanted), key=lambda t: (t.replica, t.id))
    new = [t for t in tasks if t.generation == inp.generation]
    broken = [t for t in new if failed(t)]
    if broken and inp.policy.failure_action != "continue" and _too_many(inp, broken):
        return _failure(inp, broken)
    step = Step("progress", stop=_superseded(inp, tasks))
    _start_batch(inp, tasks, step)
    if not step.start and not step.stop:
        _idle_outcome(inp, tasks, step)
    elif step.start:
        replicas = ", ".join(str(s.replica) for s in step.start)
        step.message = f"updating replica(s) {replicas} to generation {inp.generation}"
    else:
        step.message = "stopping replaced tasks"
    return step


def _too_many(inp: RolloutInput, broken: list[RolloutTask]) -> bool:
    return len(broken) > inp.policy.max_failure_ratio * len(inp.replicas)


def _failure(inp: RolloutInput, broken: list[RolloutTask]) -> Step:
    first = broken[0]
    what = "unhealthy" if first.health == "unhealthy" else first.state
    message = (
        f"{len(broken)} of {len(inp.replicas)} replica(s) of generation {inp.generation} failed "
        f"(replica {first.replica} {what} on {first.node}); action: {inp.policy.failure_action}"
    )
    return Step("failed", failure_action=inp.policy.failure_action, message=message)


def _superseded(inp: RolloutInput, tasks: list[RolloutTask]) -> list[str]:
    """Old tasks whose replica has a ready new task (any new task under stop-first; a failed one
    too when failures are ignored, so no replica is left running twice)."""
    stop_first = inp.policy.order == "stop-first"
    ignore = inp.policy.failure_action == "continue"
    replaced = {
        t.replica
        for t in tasks
        if t.generation == inp.generation and (ready(t) or stop_first or (ignore and failed(t)))
    }
    return [t.id for t in tasks if t.generation != inp.generation and t.replica in replaced]


def _in_flight(inp: RolloutInput, tasks: list[RolloutTask]) -> int:
    """New tasks still starting; failed ones hold a slot too unless failures are ignored."""
    counted = [t for t in tasks if t.generation == inp.generation and not ready(t)]
    if inp.policy.failure_action == "continue":
        counted = [t for t in counted if not failed(t)]
    return len({t.replica for t in counted})


def _last_ready(inp: RolloutInput, tasks: list[RolloutTask]) -> float | None:
    times = [t.ready_since for t in tasks if t.generation == inp.generation and ready(t) and t.ready_since]
    return max(times, default=None)


def _todo(inp: RolloutInput, tasks: list[RolloutTask]) -> list[int]:
    """Replicas with old tasks and no new one, lowest first."""
    updated = {t.replica for t in tasks if t.generation == inp.generation}
    return sorted({t.replica for t in tasks if t.generation != inp.generation} - updated)


def _start_batch(inp: RolloutInput, tasks: list[RolloutTask], step: Step) -> None:
    todo = _todo(inp, tasks)
    last = _last_ready(inp, tasks)
    if not todo or (last is not None and inp.now < last + inp.policy.delay_s):
        return
    parallelism = inp.policy.parallelism or len(todo)
    for replica in todo[: max(parallelism - _in_flight(inp, tasks), 0)]:
        old = [t for t in tasks if t.replica == replica]
        step.start.append(StartTask(replica, inp.generation, min(t.node for t in old)))
        if inp.policy.order == "stop-first":
            step.stop += [t.id for t in old]


def _idle_outcome(inp: RolloutInput, tasks: list[RolloutTask], step: Step) -> None:
    todo, busy, last = _todo(inp, tasks), _in_flight(inp, tasks), _last_ready(inp, tasks)
    if busy:
        step.outcome, step.message = "waiting", f"waiting for {busy} replica(s) to become ready"
    elif todo:
        wait = (last or inp.now) + inp.policy.delay_s - inp.now
        step.outcome, step.message = "waiting", f"next batch in {wait:.1f}s (delay)"
    elif last is not None and inp.now < last + inp.policy.monitor_s:
        left = last + inp.policy.monitor_s - inp.now
        step.outcome, step.message = "waiting", f"monitoring generation {inp.generation} for {left:.1f}s"
    else:
        count = len({t.replica for t in tasks})
        step.outcome, step.message = "done", f"revision {inp.generation} running on {count} replica(s)"

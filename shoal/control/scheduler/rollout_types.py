"""The rolling-update planner's inputs and outputs. Pure data.

The controller calls `shoal.control.scheduler.rollout.next_step(RolloutInput)` every tick for each
service whose tasks are not all at the service's current generation (or that is still being
monitored), and applies the `Step`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from shoal.model.compose import UpdatePolicy

Outcome = Literal["progress", "waiting", "done", "failed"]


@dataclass(frozen=True)
class RolloutTask:
    """A task of the service as the planner sees it."""

    id: str
    replica: int
    generation: int
    node: str
    state: str = "pending"  # observed: pending, pulling, created, running, exited, failed, stopped
    health: str = "none"  # none, starting, healthy, unhealthy
    ready_since: float | None = None  # when it became running and healthy (or running without a check)


@dataclass(frozen=True)
class RolloutInput:
    policy: UpdatePolicy  # update_config (or rollback_config while rolling back)
    generation: int  # the generation being rolled out
    replicas: tuple[int, ...]  # the replica numbers the service should have (global: node slots)
    tasks: tuple[RolloutTask, ...]
    now: float


@dataclass(frozen=True)
class StartTask:
    replica: int
    generation: int
    node_hint: str  # the old task's node: stop-first reuses it; start-first may place elsewhere


@dataclass
class Step:
    outcome: Outcome
    start: list[StartTask] = field(default_factory=list)
    stop: list[str] = field(default_factory=list)  # task ids
    failure_action: Literal["pause", "rollback", "continue"] | None = None  # set when outcome is failed
    message: str = ""

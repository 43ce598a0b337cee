"""Start order from Compose's `depends_on`: which services wait before their first start. Pure.

Compose starts a service once what it depends on has started (`service_started`), is healthy
(`service_healthy`) or has exited with code 0 (`service_completed_successfully`). The controller
asks `waiting_for` about each service that has no replica yet (a deploy's first start, a scale up
from 0): while it answers, none of the service's replicas is placed. A service that runs is never
stopped because a dependency changed later, as in Compose. A dependency without a health check
counts as healthy once running (there is nothing more to wait for).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shoal.model.compose_types import Dependency, DependencyCondition

WHAT = {
    "service_started": "be running",
    "service_healthy": "be healthy",
    "service_completed_successfully": "complete successfully",
}


@dataclass(frozen=True)
class DependencyState:
    """One dependency's replicas at its current revision, as the store sees them."""

    replicas: int  # desired
    running: int = 0
    healthy: int = 0  # running and healthy, or running without a health check
    completed: int = 0  # exited with code 0


def waiting_for(deps: Sequence[Dependency], states: Mapping[str, DependencyState]) -> str | None:
    """Why a service may not start yet (one line), or None when every dependency holds."""
    for dep in deps:
        state = states.get(dep.service)
        if state is None:
            if dep.required:
                return f"waiting for {dep.service}, which is not deployed"
            continue
        if not holds(dep.condition, state):
            return f"waiting for {dep.service} to {WHAT[dep.condition]}"
    return None


def holds(condition: DependencyCondition, state: DependencyState) -> bool:
    if condition == "service_completed_successfully":
        return state.completed >= max(state.replicas, 1)
    count = state.healthy if condition == "service_healthy" else state.running
    return count >= state.replicas

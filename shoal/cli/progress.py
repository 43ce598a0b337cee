"""Deploy progress, computed: a service's tasks at the new revision → counts, done, or the failure.

Pure (the deploy command polls the API and renders these). A replica counts as pulled once its
container exists, started when running, ready when running and healthy — or running with no
health check ("none"). A failed, exited or unhealthy replica fails the deploy with the reason the
agent reported. A rollout is done once its ready replicas are also served: published in every
node's state and applied by every node up (its DNS lists them, its ingress routes to them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the answers' models load with the first answer (see shoal.client.lazy)
    from shoal.client.models import ServiceDetail, Task

PULLED_STATES = {"created", "running", "exited", "stopped"}
READY_HEALTH = {"healthy", "none"}
FAILED_STATES = {"failed", "exited"}
FAILED_ROLLOUTS = {"failed", "paused"}


@dataclass(frozen=True)
class Progress:
    service: str
    revision: int
    desired: int
    pulled: int
    started: int
    ready: int
    old_running: int  # replicas of earlier revisions still meant to run
    failure: str | None
    waiting: str = ""  # why replicas could not be placed (`volume data is on node n2 (node down)`)
    unpublished: int = 0  # serving replicas not yet in every node's state
    lagging: tuple[str, ...] = ()  # nodes that have not applied the state that serves them
    serving_known: bool = True  # False from a server that does not say (done at healthy, as before)

    @property
    def ready_done(self) -> bool:
        """Every replica of the revision runs healthy and no older one runs."""
        return self.failure is None and self.ready >= self.desired and self.old_running == 0

    @property
    def served(self) -> bool:
        """Every node up serves the ready replicas (DNS, ingress): nothing unpublished or lagging."""
        return self.unpublished == 0 and not self.lagging

    @property
    def done(self) -> bool:
        return self.ready_done and self.served

    def line(self) -> str:
        return (
            f"{self.service}: {self.pulled}/{self.desired} pulled, {self.started}/{self.desired} started, "
            f"{self.ready}/{self.desired} healthy{self.serving_note()}"
            + (f" (unplaced: {self.waiting})" if self.waiting else "")
        )

    def serving_note(self) -> str:
        """What the ready replicas wait for before the cluster serves them ("" once it does)."""
        if not self.ready_done or self.served:
            return ""
        if self.lagging:
            return f", waiting for {', '.join(self.lagging)} to serve them"
        return f", publishing {self.unpublished} to every node"


def _one_line(message: str) -> str:
    return " ".join(message.split()) or "no reason given"


def _task_failure(service: str, task: Task) -> str | None:
    """A replica that failed, exited (as the controller also counts it) or went unhealthy."""
    if task.state in FAILED_STATES or task.health == "unhealthy":
        what = task.state if task.state in FAILED_STATES else "unhealthy"
        return f"{service} replica {task.replica} on {task.node or '?'} {what}: {_one_line(task.message)}"
    return None


def _failure(detail: ServiceDetail, revision: int, current: list[Task]) -> str | None:
    if detail.revision != revision:
        return f"{detail.name} moved on to revision {detail.revision} while waiting for revision {revision}"
    for task in current:
        found = _task_failure(detail.name, task)
        if found:
            return found
    if detail.rollout.state in FAILED_ROLLOUTS:
        return f"{detail.name} rollout {detail.rollout.state}: {_one_line(detail.rollout.message)}"
    return None


def progress(detail: ServiceDetail, revision: int) -> Progress:
    """Where the rollout of `revision` of one service stands."""
    running = [t for t in detail.tasks if t.desired == "run"]
    current = [t for t in running if t.revision == revision]
    desired = max(len(current), 1) if detail.mode == "global" else detail.replicas
    return Progress(
        service=detail.name,
        revision=revision,
        desired=desired,
        pulled=sum(t.state in PULLED_STATES for t in current),
        started=sum(t.state == "running" for t in current),
        ready=sum(t.state == "running" and t.health in READY_HEALTH for t in current),
        old_running=sum(t.revision != revision and t.state == "running" for t in running),
        failure=_failure(detail, revision, current),
        waiting="; ".join(f"replica {u.replica}: {u.reason}" for u in detail.unplaced),
        unpublished=_unpublished(detail, revision),
        lagging=tuple(detail.serving.lagging) if detail.serving is not None else (),
        serving_known=detail.serving is not None,
    )


def _unpublished(detail: ServiceDetail, revision: int) -> int:
    """Serving replicas of `revision` that no node state lists yet (0 from a server that does
    not say: its deploy is done when the replicas are healthy, as before)."""
    if detail.serving is None or detail.revision != revision:
        return 0
    return max(detail.serving.serving - detail.serving.published, 0)

"""Building the agent's status report (pure): what the loop posts to the server each heartbeat.

Inputs are the desired containers, what the runtime shows, what the containers reconciler
recorded about its last start attempts, and the health monitor's states; the output is the
`NodeStatus` wire object of shoal.model.status. Also the node's capacity, parsed from /proc.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from shoal.agent.health import HealthState, message, probe_argv
from shoal.agent.reconcilers.containers import Outcome, Seen, health_check
from shoal.model.container import ContainerSpec
from shoal.model.status import Capacity, ContainerState, ContainerStatus, Health

_RUNTIME_STATES: dict[str, ContainerState] = {
    "running": "running",
    "created": "created",
    "creating": "created",
    "paused": "running",
    "stopped": "exited",
    "exited": "exited",
}


def container_status(
    spec: ContainerSpec,
    seen: Seen | None,
    outcome: Outcome | None,
    health: HealthState | None,
    restarts: int = 0,
) -> ContainerStatus:
    """One desired container's status: what runs, or why it does not."""
    state, text = _state_and_message(seen, outcome)
    health_now = _health(spec, seen, health)
    if health_now == "unhealthy" and health is not None:
        text = message(health)
    return ContainerStatus(
        id=spec.id,
        service=spec.service,
        replica=spec.replica,
        generation=spec.generation,
        state=state,
        health=health_now,
        ip=(outcome.ip if outcome and outcome.ip else spec.ip),
        image=spec.image,
        image_digest=_digest(spec, seen, outcome),
        pid=seen.pid if seen else None,
        exit_code=seen.exit_code if seen else None,
        started_at=seen.started_at if seen else None,
        restarts=(seen.restarts if seen else 0) + restarts,
        message=text,
    )


def _digest(spec: ContainerSpec, seen: Seen | None, outcome: Outcome | None) -> str:
    if outcome is not None and outcome.image_digest:
        return outcome.image_digest
    return seen.image_digest if seen is not None and seen.image_digest else spec.image_digest


def _state_and_message(seen: Seen | None, outcome: Outcome | None) -> tuple[ContainerState, str]:
    if seen is not None:
        state = _RUNTIME_STATES.get(seen.state, "failed")
        if state == "exited" and outcome is not None and outcome.message:
            return state, outcome.message
        text = f"exited with code {seen.exit_code}" if state == "exited" and seen.exit_code else ""
        return state, text
    if outcome is None:
        return "pending", ""
    if outcome.state == "failed":
        return "failed", outcome.message
    return "pulling", ""


def _health(spec: ContainerSpec, seen: Seen | None, health: HealthState | None) -> Health:
    check = health_check(spec, seen)
    if check is None or probe_argv(check.test) is None:
        return "none"
    if seen is None or seen.state != "running":
        return "none"
    return health.status if health is not None else "starting"


def container_statuses(
    specs: Iterable[ContainerSpec],
    observed: Mapping[str, Seen],
    outcomes: Mapping[str, Outcome],
    health: Mapping[str, HealthState],
    restarts: Mapping[str, int],
) -> list[ContainerStatus]:
    return [
        container_status(s, observed.get(s.id), outcomes.get(s.id), health.get(s.id), restarts.get(s.id, 0))
        for s in specs
    ]


def leftover_statuses(desired: Iterable[str], observed: Mapping[str, Seen]) -> list[ContainerStatus]:
    """Containers the state no longer lists but the machine still has (stopping in their grace, or
    ended and about to be deleted): reported, so the server keeps their addresses reserved until
    they are gone instead of handing one to a new replica here."""
    wanted = set(desired)
    return [
        ContainerStatus(
            id=cid,
            state=_RUNTIME_STATES.get(seen.state, "failed"),
            ip=seen.ip,
            pid=seen.pid,
            exit_code=seen.exit_code,
            started_at=seen.started_at,
            message="stopping" if seen.state == "running" else "",
        )
        for cid, seen in sorted(observed.items())
        if cid not in wanted
    ]


def parse_meminfo(text: str) -> int:
    """MemTotal in bytes from /proc/meminfo text (0 when absent)."""
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            return int(parts[1]) * 1024 if len(parts) >= 2 and parts[1].isdigit() else 0
    return 0


def read_capacity(proc: Path = Path("/proc")) -> Capacity:
    """The machine's CPUs and memory, from the kernel."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return Capacity(cpus=float(cpus), memory_bytes=parse_meminfo((proc / "meminfo").read_text()))

"""The controller's planning step: rows → the scheduler's `Snapshot` → one `Plan` to apply.

Placement is `shoal.control.scheduler.schedule`; each service whose tasks are not all at its
current revision (the scheduler's "generation") is advanced by `scheduler.next_step`. The result
is what `controller.apply` writes in one transaction. Pure apart from reading the rows passed in.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from shoal.control.revision import RevisionSpec, UpdateSpec
from shoal.control.scheduler import (
    NodeInfo,
    RolloutInput,
    RolloutTask,
    ServicePlacement,
    Snapshot,
    TaskInfo,
    next_step,
    schedule,
)
from shoal.model.compose import UpdatePolicy
from shoal.model.ports import INGRESS_PORTS, port_key

ROLLING = ("updating", "rolling back")


@dataclass
class Plan:
    stop: list[str] = field(default_factory=list)
    start: list[tuple[str, int, int, str]] = field(default_factory=list)  # service, replica, revision, node
    rollout: dict[str, tuple[str, str]] = field(default_factory=dict)  # service → (state, message)
    revert: dict[str, int] = field(default_factory=dict)  # service → revision to roll back to
    unplaced: list[str] = field(default_factory=list)
    why_unplaced: dict[str, str] = field(default_factory=dict)  # service → why a replica has no node


@dataclass(frozen=True)
class Service:
    name: str
    revision: int
    replicas: int
    spec: RevisionSpec
    rollout_state: str


def node_info(row: dict[str, Any]) -> NodeInfo:
    cap = row.get("capacity") or {}
    return NodeInfo(
        name=row["name"],
        role="server" if row.get("role") == "server" else "worker",
        labels=dict(row.get("labels") or {}),
        availability="drain" if row["availability"] == "drain" else "active",
        up=not row["down"],
        cpus=float(cap.get("cpus") or 0),
        memory_bytes=int(cap.get("memory_bytes") or 0),
        slot=int(row["subnet_index"]),
        reserved_ports=node_ports(row),
    )


def node_ports(row: dict[str, Any]) -> dict[str, str]:
    """Host ports a node keeps for itself: its WireGuard endpoint's, and 80/443 on ingress nodes."""
    ports = dict.fromkeys(INGRESS_PORTS, "ingress") if row.get("ingress") else {}
    _, _, port = str(row.get("endpoint") or "").rpartition(":")
    if port.isdigit():
        ports[port_key(int(port), "udp")] = "WireGuard"
    return ports


def published_ports(spec: RevisionSpec | None) -> tuple[str, ...]:
    """The host ports a replica of the revision publishes ("8080/tcp")."""
    ports = spec.template.ports if spec else []
    return tuple(sorted({port_key(p.host_port, p.protocol) for p in ports}))


def task_info(row: dict[str, Any], spec: RevisionSpec | None) -> TaskInfo:
    res = spec.template.resources if spec else None
    return TaskInfo(
        id=row["id"],
        service=row["service"],
        replica=row["replica"],
        node=row["node"] or "",
        state=row["observed_state"],
        generation=row["revision"],
        health=row["health"],
        reserve_cpus=res.reserve_cpus if res else 0.0,
        reserve_memory_bytes=res.reserve_memory_bytes if res else 0,
        ports=published_ports(spec),
    )


def placement(svc: Service, tasks: list[dict[str, Any]]) -> ServicePlacement:
    res = svc.spec.template.resources
    pinned = sorted({t["node"] for t in tasks if t["node"]}) if svc.spec.volumes else []
    return ServicePlacement(
        name=svc.name,
        mode=svc.spec.mode,
        replicas=svc.replicas,
        generation=svc.revision,
        constraints=tuple(svc.spec.constraints),
        preferences=tuple(svc.spec.preferences),
        reserve_cpus=res.reserve_cpus,
        reserve_memory_bytes=res.reserve_memory_bytes,
        volumes=tuple(svc.spec.volumes),
        pinned_node=pinned[0] if pinned else None,
        ports=published_ports(svc.spec),
    )


def plan(
    nodes: list[dict[str, Any]], services: list[Service], tasks: list[dict[str, Any]], now: float
) -> Plan:
    """Placement for every service, then the next rollout step of those mid-update."""
    specs = {s.name: s.spec for s in services}
    by_service: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for task in tasks:
        by_service[task["service"]].append(task)
    snapshot = Snapshot(
        nodes=tuple(node_info(n) for n in nodes),
        services=tuple(placement(s, by_service[s.name]) for s in services),
        tasks=tuple(task_info(t, specs.get(t["service"])) for t in tasks if t["node"]),
    )
    placed = schedule(snapshot)
    out = Plan(
        stop=[r.task_id for r in placed.remove] + [t["id"] for t in tasks if not t["node"]],
        start=[(p.service, p.replica, p.generation, p.node) for p in placed.place],
        unplaced=[f"{u.service}.{u.replica}: {u.reason}" for u in placed.unplaceable],
        why_unplaced={
            u.service: f"replica {u.replica} cannot be placed: {u.reason}" for u in placed.unplaceable
        },
    )
    gone = set(out.stop)
    for svc in services:
        _rollout(svc, [t for t in by_service[svc.name] if t["id"] not in gone], now, out)
    return out


def _policy(spec: UpdateSpec, ports: tuple[str, ...] = ()) -> UpdatePolicy:
    """The update policy; stop-first whatever it says when replicas publish host ports: a new
    task started beside the old one on its node could not have them."""
    policy = UpdatePolicy.model_validate(spec.model_dump())
    return policy.model_copy(update={"order": "stop-first"}) if ports else policy


def _rollout(svc: Service, tasks: list[dict[str, Any]], now: float, out: Plan) -> None:
    outdated = any(t["revision"] != svc.revision for t in tasks)
    if not outdated and svc.rollout_state not in ROLLING:
        return
    if svc.rollout_state == "paused":
        return
    policy = svc.spec.rollback if svc.rollout_state == "rolling back" else svc.spec.update
    step = next_step(
        RolloutInput(
            policy=_policy(policy, published_ports(svc.spec)),
            generation=svc.revision,
            replicas=tuple(sorted({t["replica"] for t in tasks})),
            tasks=tuple(_rollout_task(t) for t in tasks),
            now=now,
        )
    )
    out.stop += step.stop
    out.start += [(svc.name, s.replica, s.generation, s.node_hint) for s in step.start]
    _outcome(svc, step.outcome, step.failure_action, step.message, out)


def _outcome(svc: Service, outcome: str, action: str | None, message: str, out: Plan) -> None:
    if outcome == "done" and svc.rollout_state != "completed":
        out.rollout[svc.name] = ("completed", message)
    elif outcome == "failed":
        if action == "rollback" and svc.rollout_state != "rolling back" and svc.revision > 1:
            out.revert[svc.name] = svc.revision - 1
            out.rollout[svc.name] = ("rolling back", message)
        else:
            out.rollout[svc.name] = ("paused", message)


def _rollout_task(row: dict[str, Any]) -> RolloutTask:
    ready = row["observed_state"] == "running" and row["health"] in ("none", "healthy")
    return RolloutTask(
        id=row["id"],
        replica=row["replica"],
        generation=row["revision"],
        node=row["node"] or "",
        state=row["observed_state"],
        health=row["health"],
        ready_since=row["updated"].timestamp() if ready else None,
    )

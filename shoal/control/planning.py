"""The controller's planning step: rows → the scheduler's `Snapshot` → one `ControllerPlan` to apply.

Placement is `shoal.control.scheduler.schedule`; each service whose tasks are not all at its
current revision (the scheduler's "generation") is advanced by `scheduler.next_step`; every
replicated service gets its rebalance step (`rebalancing.steps`: moves start in the controller).
The result is what `controller.apply` writes in one transaction. Pure apart from reading the rows passed in.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from shoal.control import rebalancing
from shoal.control.revision import RevisionSpec
from shoal.control.scheduler import (
    NodeInfo,
    RebalanceStep,
    RolloutInput,
    RolloutTask,
    ServicePlacement,
    Snapshot,
    TaskInfo,
    VolumeBinding,
    next_step,
    schedule,
)
from shoal.control.scheduler.dependencies import DependencyState, waiting_for
from shoal.model.compose import UpdatePolicy
from shoal.model.container import host_network
from shoal.model.deploy_wire import split_qualified
from shoal.model.ports import INGRESS_PORTS, port_key

ROLLING = ("updating", "rolling back")


@dataclass
class ControllerPlan:
    """One tick's changes: the scheduler's placement plus rollouts, reverts and addresses."""

    stop: list[str] = field(default_factory=list)
    start: list[tuple[str, int, int, str]] = field(default_factory=list)  # service, replica, revision, node
    rollout: dict[str, tuple[str, str]] = field(default_factory=dict)  # service → (state, message)
    revert: dict[str, int] = field(default_factory=dict)  # service → revision to roll back to
    unplaced: dict[tuple[str, int], str] = field(default_factory=dict)  # (service, replica) → why
    bind: list[VolumeBinding] = field(default_factory=list)  # volumes placed for the first time
    addressless: set[str] = field(default_factory=set)  # services on the node's network: no IP
    rebalance: dict[str, RebalanceStep] = field(default_factory=dict)  # replicated services' steps
    rebalance_busy: set[str] = field(default_factory=set)  # placed or rolled this tick: no move
    rebalance_auto: set[str] = field(default_factory=set)  # `x-shoal: {rebalance: auto}`
    revisions: dict[str, int] = field(default_factory=dict)  # service → its current revision


@dataclass(frozen=True)
class PlannedService:
    """A service as the planner reads it: its current revision and its rollout's state."""

    name: str
    revision: int
    replicas: int
    spec: RevisionSpec
    rollout_state: str
    rollout_message: str = ""


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


def task_info(row: dict[str, Any], spec: RevisionSpec | None, applied: int | None = None) -> TaskInfo:
    """`applied`: the oldest cluster version the nodes up have applied (a task published at it or
    before is in every node's DNS and ingress)."""
    res = spec.template.resources if spec else None
    published = row.get("published")
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
        seq=int(row.get("generation") or 0),
        served=published is not None and (applied is None or published <= applied),
    )


def applied_everywhere(nodes: list[dict[str, Any]]) -> int | None:
    """The oldest cluster version applied by a node up (None: no node up says; a node that never
    says is not waited for, as `nodes.lagging` does not)."""
    versions = [n.get("applied_cluster_version") for n in nodes if not n["down"]]
    return min((int(v) for v in versions if v is not None), default=None)


def placement(svc: PlannedService) -> ServicePlacement:
    res = svc.spec.template.resources
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
        project=split_qualified(svc.name)[0],
        ports=published_ports(svc.spec),
    )


def binding(row: dict[str, Any]) -> VolumeBinding:
    return VolumeBinding(project=row["project"], name=row["name"], node=row["node"])


def plan(
    nodes: list[dict[str, Any]],
    services: list[PlannedService],
    tasks: list[dict[str, Any]],
    now: float,
    volumes: list[dict[str, Any]] | None = None,
) -> ControllerPlan:
    """Placement for every service (`volumes`: the stored bindings), then the next rollout step of
    those mid-update."""
    specs = {s.name: s.spec for s in services}
    by_service: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for task in tasks:
        by_service[task["service"]].append(task)
    held = _held(services, by_service)
    applied = applied_everywhere(nodes)
    free = [s for s in services if s.name not in held]
    snapshot = Snapshot(
        nodes=tuple(node_info(n) for n in nodes),
        services=tuple(placement(s) for s in free),
        tasks=tuple(task_info(t, specs.get(t["service"]), applied) for t in tasks if t["node"]),
        volumes=tuple(binding(v) for v in volumes or ()),
    )
    placed = schedule(snapshot)
    out = ControllerPlan(
        stop=[r.task_id for r in placed.remove] + [t["id"] for t in tasks if not t["node"]],
        start=[(p.service, p.replica, p.generation, p.node) for p in placed.place],
        unplaced={(u.service, u.replica): u.reason for u in placed.unplaceable},
        bind=placed.bind,
        addressless={s.name for s in services if host_network(s.spec.template)},
    )
    gone = set(out.stop)
    for svc in free:
        _rollout(svc, [t for t in by_service[svc.name] if t["id"] not in gone], now, out)
    _rebalance(snapshot, free, tasks, out)
    for svc in services:
        if svc.name in held:
            out.unplaced |= {(svc.name, r): held[svc.name] for r in range(1, svc.replicas + 1)}
        if svc.name in held and svc.rollout_message != held[svc.name]:
            out.rollout[svc.name] = ("updating", held[svc.name])
    return out


def _rebalance(
    snapshot: Snapshot, free: list[PlannedService], tasks: list[dict[str, Any]], out: ControllerPlan
) -> None:
    """Every replicated service's rebalance step; a service being rolled out, or that placement
    or its rollout changes this tick, is busy (no move, nothing stopped for a move)."""
    out.rebalance = rebalancing.steps(snapshot)
    of_task = {t["id"]: t["service"] for t in tasks}
    rolling = {s.name for s in free if s.rollout_state in ROLLING}
    out.rebalance_busy = rolling | {s for s, *_ in out.start} | {of_task.get(i, "") for i in out.stop}
    out.rebalance_auto = {s.name for s in free if s.spec.rebalance == "auto"}
    out.revisions = {s.name: s.revision for s in free}
    for name, step in out.rebalance.items():
        if name not in out.rebalance_busy:
            out.stop += step.stop


def _held(services: list[PlannedService], by_service: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
    """Services with no replica yet whose `depends_on` does not hold: service → why it waits."""
    states = {s.name: _dependency_state(s, by_service[s.name]) for s in services}
    held = {}
    for svc in services:
        if by_service[svc.name] or not svc.spec.depends_on:
            continue
        project, _ = split_qualified(svc.name)
        mine = {split_qualified(n)[1]: st for n, st in states.items() if split_qualified(n)[0] == project}
        reason = waiting_for(svc.spec.depends_on, mine)
        if reason is not None:
            held[svc.name] = reason
    return held


def _dependency_state(svc: PlannedService, tasks: list[dict[str, Any]]) -> DependencyState:
    current = [t for t in tasks if t["revision"] == svc.revision]
    running = [t for t in current if t["observed_state"] == "running"]
    return DependencyState(
        replicas=svc.replicas if svc.spec.mode == "replicated" else max(len(current), 1),
        running=len(running),
        healthy=sum(t["health"] in ("none", "healthy") for t in running),
        completed=sum(t["observed_state"] == "exited" and t.get("exit_code") == 0 for t in current),
    )


def _policy(policy: UpdatePolicy, ports: tuple[str, ...] = ()) -> UpdatePolicy:
    """The update policy; stop-first whatever it says when replicas publish host ports: a new
    task started beside the old one on its node could not have them."""
    return policy.model_copy(update={"order": "stop-first"}) if ports else policy


def _rollout(svc: PlannedService, tasks: list[dict[str, Any]], now: float, out: ControllerPlan) -> None:
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
    if step.outcome == "done" and not _all_ready(svc, tasks, out):
        return  # a new service's first tick has no task yet: not "running on 0 replica(s)"
    _outcome(svc, step.outcome, step.failure_action, step.message, out)


def _all_ready(svc: PlannedService, tasks: list[dict[str, Any]], out: ControllerPlan) -> bool:
    """Every replica the service wants runs its revision, ready, and none is being placed now."""
    if any(start[0] == svc.name for start in out.start):
        return False
    current = [t for t in tasks if t["revision"] == svc.revision and _rollout_task(t).ready_since]
    wanted = len(tasks) if svc.spec.mode == "global" else svc.replicas
    return len(current) >= wanted


def _outcome(
    svc: PlannedService, outcome: str, action: str | None, message: str, out: ControllerPlan
) -> None:
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

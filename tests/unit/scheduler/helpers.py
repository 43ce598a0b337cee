"""Small builders for scheduler snapshots, and applying a plan to a snapshot as the store would."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from shoal.control.scheduler import NodeInfo, Plan, ServicePlacement, Snapshot, TaskInfo, VolumeBinding

GIB = 1 << 30


def node(name: str, **kw: Any) -> NodeInfo:
    kw.setdefault("cpus", 4.0)
    kw.setdefault("memory_bytes", 8 * GIB)
    return NodeInfo(name=name, **kw)


def svc(name: str, replicas: int = 1, **kw: Any) -> ServicePlacement:
    return ServicePlacement(name=name, replicas=replicas, **kw)


def task(service: str, replica: int, node_name: str, **kw: Any) -> TaskInfo:
    kw.setdefault("generation", 1)
    task_id = f"{service}-{replica}-{kw['generation']}-{node_name}"
    return TaskInfo(id=task_id, service=service, replica=replica, node=node_name, **kw)


def snap(
    nodes: list[NodeInfo],
    services: list[ServicePlacement],
    tasks: list[TaskInfo] | None = None,
    volumes: dict[str, str] | None = None,
) -> Snapshot:
    """`volumes`: volume name (of project "") → the node it is bound to."""
    bound = tuple(VolumeBinding("", name, node) for name, node in (volumes or {}).items())
    return Snapshot(nodes=tuple(nodes), services=tuple(services), tasks=tuple(tasks or ()), volumes=bound)


def apply(snapshot: Snapshot, plan: Plan) -> Snapshot:
    """The snapshot after the store applied the plan: removals gone, placements as running tasks,
    new volume bindings stored."""
    gone = {r.task_id for r in plan.remove}
    services = {s.name: s for s in snapshot.services}
    kept = [t for t in snapshot.tasks if t.id not in gone]
    new = [
        TaskInfo(
            id=f"{p.service}-{p.replica}-{p.generation}-{p.node}",
            service=p.service,
            replica=p.replica,
            node=p.node,
            generation=p.generation,
            reserve_cpus=services[p.service].reserve_cpus,
            reserve_memory_bytes=services[p.service].reserve_memory_bytes,
        )
        for p in plan.place
    ]
    return replace(snapshot, tasks=tuple(kept + new), volumes=snapshot.volumes + tuple(plan.bind))


def placed(plan: Plan) -> list[tuple[str, int, str]]:
    return [(p.service, p.replica, p.node) for p in plan.place]


def counts(snapshot: Snapshot, service: str) -> dict[str, int]:
    out = {n.name: 0 for n in snapshot.nodes}
    for t in snapshot.tasks:
        if t.service == service:
            out[t.node] += 1
    return out

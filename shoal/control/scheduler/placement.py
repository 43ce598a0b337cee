"""`schedule(snapshot) -> Plan`: which tasks to create, which to remove, which replicas cannot run.

The controller's placement step (pure). Keeps every task whose node is up, active and still
allowed; replaces tasks on down, draining or removed nodes; scales replicated services up and down
(highest replicas go first); runs one task per eligible node for global services. New tasks go,
among the nodes that satisfy the constraints and have the reservation and the service's published
host ports free (one replica per node and port: the node's firewall DNATs a port to one
container; 80/443 stay Caddy's on ingress nodes), to the emptiest label
group of each spread preference, then to the node with the fewest tasks of the service, then the
fewest tasks, then the first name: the same snapshot always gives the same plan. A replicated
service that uses named volumes runs only on the node they are bound to (`scheduler.volumes`).
"""

from __future__ import annotations

from collections import defaultdict

from shoal.control.scheduler.cluster import Cluster, constraints_of, node_problem, unmet
from shoal.control.scheduler.types import (
    NodeInfo,
    Placement,
    Plan,
    Removal,
    ServicePlacement,
    Snapshot,
    TaskInfo,
    Unplaceable,
)
from shoal.control.scheduler.volumes import Pin, bind, pin_of
from shoal.model.constraints import Constraint


def schedule(snapshot: Snapshot) -> Plan:
    """The whole plan for one controller tick: every removal first (freeing capacity), then placements."""
    cluster = Cluster(snapshot)
    plan = Plan()
    services = {s.name: s for s in snapshot.services}
    kept: dict[str, tuple[list[Constraint], list[TaskInfo]]] = {}
    for name, tasks in _tasks_by_service(snapshot, services, cluster, plan).items():
        try:
            constraints = constraints_of(services[name])
        except ValueError as bad:
            _all_unplaceable(services[name], cluster, plan, str(bad))
            continue
        kept[name] = (constraints, _keep_valid(services[name], tasks, constraints, cluster, plan))
    for name, (constraints, tasks) in kept.items():
        place = _schedule_global if services[name].mode == "global" else _schedule_replicated
        place(services[name], tasks, constraints, cluster, plan)
    return plan


def _tasks_by_service(
    snapshot: Snapshot, services: dict[str, ServicePlacement], cluster: Cluster, plan: Plan
) -> dict[str, list[TaskInfo]]:
    """Every service's tasks, services by name; tasks of services that are gone are removed."""
    by_service: dict[str, list[TaskInfo]] = {name: [] for name in sorted(services)}
    for task in sorted(snapshot.tasks, key=lambda t: (t.service, t.replica, t.generation, t.id)):
        if task.service in services:
            by_service[task.service].append(task)
        else:
            _remove(plan, cluster, task, "service removed")
    return by_service


def _all_unplaceable(svc: ServicePlacement, cluster: Cluster, plan: Plan, reason: str) -> None:
    count = len(cluster.nodes) if svc.mode == "global" else svc.replicas
    plan.unplaceable += [Unplaceable(svc.name, r, reason) for r in range(1, count + 1)]


def _keep_valid(
    svc: ServicePlacement, tasks: list[TaskInfo], constraints: list[Constraint], cluster: Cluster, plan: Plan
) -> list[TaskInfo]:
    """Remove tasks that may not stay (bad node, constraint, volume elsewhere, scaled down); the rest."""
    kept = []
    for task in tasks:
        problem = _task_problem(svc, task, constraints, cluster)
        if problem is None:
            kept.append(task)
        else:
            _remove(plan, cluster, task, problem)
    if svc.mode == "global":
        return kept
    for task in sorted(kept, key=lambda t: (-t.replica, t.id)):
        if task.replica > svc.replicas:
            _remove(plan, cluster, task, "scaled down")
    return [t for t in kept if t.replica <= svc.replicas]


def _task_problem(
    svc: ServicePlacement, task: TaskInfo, constraints: list[Constraint], cluster: Cluster
) -> str | None:
    node = cluster.nodes.get(task.node)
    problem = node_problem(node)
    if problem is not None or node is None:
        return problem
    failed = unmet(constraints, node)
    if failed is not None:
        return f"constraint {failed} no longer holds"
    pin = pin_of(svc, cluster)
    if pin.node is not None and task.node != pin.node:
        return pin.elsewhere()
    return None


def _remove(plan: Plan, cluster: Cluster, task: TaskInfo, reason: str) -> None:
    plan.remove.append(Removal(task.id, task.service, task.replica, task.node, reason))
    cluster.release(task)


def _schedule_replicated(
    svc: ServicePlacement, kept: list[TaskInfo], constraints: list[Constraint], cluster: Cluster, plan: Plan
) -> None:
    held = {t.replica for t in kept}
    pin = pin_of(svc, cluster, [t.node for t in kept])
    if pin.node is not None and kept:
        bind(svc, pin.node, cluster, plan)
    eligible = [] if pin.conflict else eligible_nodes(cluster, constraints, pin.node)
    spread = spread_values(svc, eligible)
    for replica in range(1, svc.replicas + 1):
        if replica in held:
            continue
        node = choose(svc, eligible, cluster, spread)
        if node is None:
            plan.unplaceable.append(Unplaceable(svc.name, replica, _why_not(svc, constraints, pin, cluster)))
            continue
        cluster.reserve(svc, node)
        plan.place.append(Placement(svc.name, replica, node, svc.generation))
        if svc.volumes and pin.node is None:
            bind(svc, node, cluster, plan)
            pin = pin_of(svc, cluster)
            eligible = [n for n in eligible if n.name == node]


def eligible_nodes(cluster: Cluster, constraints: list[Constraint], pin: str | None) -> list[NodeInfo]:
    return [
        n
        for n in cluster.nodes.values()
        if node_problem(n) is None and unmet(constraints, n) is None and pin in (None, n.name)
    ]


def choose(
    svc: ServicePlacement, eligible: list[NodeInfo], cluster: Cluster, spread: list[dict[str, str]]
) -> str | None:
    """The emptiest group of each spread preference in turn (within the previous one), then the node
    with the fewest tasks of the service, then the fewest tasks, then the first name. `spread` holds,
    per preference, each eligible node's label value."""
    fitting = cluster.fitting(svc, [n.name for n in eligible])
    scope = [n.name for n in eligible]
    for values in spread:
        if not fitting:
            break
        counts: dict[str, int] = defaultdict(int)
        for name in scope:
            counts[values[name]] += cluster.per_service[(svc.name, name)]
        _, best = min((counts[values[n]], values[n]) for n in fitting)
        fitting = [n for n in fitting if values[n] == best]
        scope = [n for n in scope if values[n] == best]
    if not fitting:
        return None
    per_service, total = cluster.per_service, cluster.total
    return min((per_service[(svc.name, n)], total[n], n) for n in fitting)[2]


def spread_values(svc: ServicePlacement, eligible: list[NodeInfo]) -> list[dict[str, str]]:
    """Per spread preference, each node's value of that label ("" when it has none)."""
    keys = [k.removeprefix("node.labels.") for k in svc.preferences]
    return [{n.name: n.labels.get(k, "") for n in eligible} for k in keys]


def _why_not(svc: ServicePlacement, constraints: list[Constraint], pin: Pin, cluster: Cluster) -> str:
    if pin.conflict:
        return pin.conflict
    home = node_problem(cluster.nodes.get(pin.node)) if pin.node is not None else None
    if home is not None:
        return f"{pin.elsewhere()} ({home})"
    nodes = [n for n in cluster.nodes.values() if node_problem(n) is None]
    if not nodes:
        return "no node is up and active" if cluster.nodes else "no nodes in the cluster"
    for c in constraints:
        nodes = [n for n in nodes if unmet([c], n) is None]
        if not nodes:
            return f"no node satisfies {c}"
    if pin.node is not None and pin.node not in {n.name for n in nodes}:
        return f"{pin.elsewhere()} (not allowed by the constraints)"
    candidates = [n.name for n in nodes if pin.node in (None, n.name)]
    short = sorted({cluster.lacks(svc, n) for n in candidates} - {""})
    clashes = sorted({cluster.port_clash(svc, n) for n in candidates} - {""})
    why = ([f"insufficient {' or '.join(short)}"] if short else []) + clashes
    return f"{'; '.join(why)} on {len(candidates)} eligible node(s)"


def _schedule_global(
    svc: ServicePlacement, kept: list[TaskInfo], constraints: list[Constraint], cluster: Cluster, plan: Plan
) -> None:
    covered = {t.node for t in kept}
    for index, node in enumerate(cluster.nodes.values(), start=1):
        if node.name in covered or node_problem(node) is not None or unmet(constraints, node) is not None:
            continue
        replica = node.slot or index
        if cluster.fits(svc, node.name):
            cluster.reserve(svc, node.name)
            plan.place.append(Placement(svc.name, replica, node.name, svc.generation))
        else:
            short = cluster.lacks(svc, node.name)
            why = f"insufficient {short}" if short else cluster.port_clash(svc, node.name)
            reason = f"{why} on node {node.name}"
            plan.unplaceable.append(Unplaceable(svc.name, replica, reason))

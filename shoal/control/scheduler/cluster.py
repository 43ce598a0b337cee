"""The scheduler's running view of the cluster while it plans: free capacity, task counts and the
host ports taken, per node.

Built from a `Snapshot`, updated as the plan reserves (placements) and releases (removals), so
later decisions in the same plan see earlier ones. Pure.
"""

from __future__ import annotations

import math
from collections import Counter

from shoal.control.scheduler.types import NodeInfo, ServicePlacement, Snapshot, TaskInfo
from shoal.model.constraints import Constraint, parse_constraint


class Cluster:
    def __init__(self, snapshot: Snapshot) -> None:
        self.nodes = {n.name: n for n in sorted(snapshot.nodes, key=lambda n: n.name)}
        self.free_cpus = {n.name: n.cpus or math.inf for n in self.nodes.values()}
        self.free_memory = {n.name: float(n.memory_bytes or math.inf) for n in self.nodes.values()}
        self.total: Counter[str] = Counter()
        self.per_service: Counter[tuple[str, str]] = Counter()
        self.volumes = {(v.project, v.name): v.node for v in snapshot.volumes}  # grows as the plan binds
        self.ports: dict[str, Counter[str]] = {n: Counter() for n in self.nodes}  # node -> port -> tasks
        for task in snapshot.tasks:
            self.hold(task.service, task.node, task.reserve_cpus, task.reserve_memory_bytes, task.ports)

    def hold(self, service: str, node: str, cpus: float, memory: float, ports: tuple[str, ...] = ()) -> None:
        """Count a task on a node and take its reservation and host ports from what is free there."""
        if node not in self.nodes:
            return
        self.total[node] += 1
        self.per_service[(service, node)] += 1
        self.free_cpus[node] -= cpus
        self.free_memory[node] -= memory
        self.ports[node].update(ports)

    def release(self, task: TaskInfo) -> None:
        """Undo `hold` for a task the plan removes."""
        if task.node not in self.nodes:
            return
        self.total[task.node] -= 1
        self.per_service[(task.service, task.node)] -= 1
        self.free_cpus[task.node] += task.reserve_cpus
        self.free_memory[task.node] += task.reserve_memory_bytes
        self.ports[task.node].subtract(task.ports)

    def reserve(self, svc: ServicePlacement, node: str) -> None:
        self.hold(svc.name, node, svc.reserve_cpus, svc.reserve_memory_bytes, svc.ports)

    def fits(self, svc: ServicePlacement, node: str) -> bool:
        if self.port_clash(svc, node):
            return False
        return self.free_cpus[node] >= svc.reserve_cpus and self.free_memory[node] >= svc.reserve_memory_bytes

    def port_clash(self, svc: ServicePlacement, node: str) -> str:
        """Why the service's host ports cannot be published on a node ("" when they can)."""
        reserved, taken = self.nodes[node].reserved_ports, self.ports[node]
        for port in svc.ports:
            if port in reserved:
                return f"host port {port} is reserved for {reserved[port]}"
            if taken[port] > 0:
                return f"host port {port} is taken"
        return ""

    def fitting(self, svc: ServicePlacement, names: list[str]) -> list[str]:
        """The nodes among `names` that have the service's reservation free (the hot loop of placing)."""
        cpus, memory, need_cpus, need_memory = (
            self.free_cpus,
            self.free_memory,
            svc.reserve_cpus,
            svc.reserve_memory_bytes,
        )
        room = [n for n in names if cpus[n] >= need_cpus and memory[n] >= need_memory]
        return [n for n in room if not self.port_clash(svc, n)] if svc.ports else room

    def lacks(self, svc: ServicePlacement, node: str) -> str:
        """What is short on a node the service does not fit: "memory", "cpu" or "cpu and memory"."""
        short = []
        if self.free_cpus[node] < svc.reserve_cpus:
            short.append("cpu")
        if self.free_memory[node] < svc.reserve_memory_bytes:
            short.append("memory")
        return " and ".join(short)


def node_problem(node: NodeInfo | None) -> str | None:
    """Why no task may run on this node, or None."""
    if node is None:
        return "node removed"
    if not node.up:
        return "node down"
    if node.availability != "active":
        return "node draining"
    return None


def constraints_of(svc: ServicePlacement) -> list[Constraint]:
    return [parse_constraint(c) for c in svc.constraints]


def unmet(constraints: list[Constraint], node: NodeInfo) -> Constraint | None:
    """The first constraint this node does not satisfy, or None."""
    for c in constraints:
        if not c.matches(node.name, node.id, node.role, node.labels):
            return c
    return None

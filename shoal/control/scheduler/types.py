"""The scheduler's inputs and outputs: a snapshot of the cluster in, a plan out. Pure data.

The controller builds a `Snapshot` from the store (nodes, services' current revisions, tasks that
are meant to run), calls `shoal.control.scheduler.schedule(snapshot)`, and applies the `Plan` in
one transaction. Rolling updates are planned separately (`scheduler.rollout`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Role = Literal["server", "worker"]
Availability = Literal["active", "drain"]
Mode = Literal["replicated", "global"]


@dataclass(frozen=True)
class NodeInfo:
    """A node as the scheduler sees it. Capacity 0 means "not reported": no limit is applied."""

    name: str
    role: Role = "worker"
    labels: dict[str, str] = field(default_factory=dict)
    availability: Availability = "active"
    up: bool = True
    cpus: float = 0.0
    memory_bytes: int = 0
    id: str = ""  # `node.id` in constraints; defaults to the name
    slot: int = 0  # stable small number of the node (e.g. its subnet index): a global task's replica
    reserved_ports: dict[str, str] = field(default_factory=dict)  # "80/tcp" -> what holds it ("ingress")


@dataclass(frozen=True)
class TaskInfo:
    """A task the store means to run (any observed state); several may share a replica mid-rollout."""

    id: str
    service: str
    replica: int
    node: str
    state: str = "running"  # observed: pending, running, failed, ...
    generation: int = 0
    health: str = "none"
    reserve_cpus: float = 0.0
    reserve_memory_bytes: int = 0
    ports: tuple[str, ...] = ()  # the host ports it publishes: "8080/tcp"
    seq: int = 0  # the task's own sequence number: of two tasks of a replica, the higher is newer
    served: bool = True  # in the DNS and ingress of every node up (published, and applied there)


@dataclass(frozen=True)
class ServicePlacement:
    """What the scheduler needs of a service's current revision."""

    name: str
    mode: Mode = "replicated"
    replicas: int = 1  # replicated only
    generation: int = 0  # the generation new tasks get
    constraints: tuple[str, ...] = ()  # "node.labels.zone==eu", "node.role!=server", "node.hostname==a"
    preferences: tuple[str, ...] = ()  # spread keys, outermost first: "node.labels.zone"
    reserve_cpus: float = 0.0
    reserve_memory_bytes: int = 0
    volumes: tuple[str, ...] = ()  # named volumes: all replicas stay on the node they are bound to
    project: str = ""  # a volume's identity is (project, name)
    ports: tuple[str, ...] = ()  # host ports each replica publishes ("8080/tcp"): one replica a node


@dataclass(frozen=True)
class VolumeBinding:
    """A named volume of a project and the node its directory lives on (a stored fact)."""

    project: str
    name: str
    node: str


@dataclass(frozen=True)
class Snapshot:
    nodes: tuple[NodeInfo, ...] = ()
    services: tuple[ServicePlacement, ...] = ()
    tasks: tuple[TaskInfo, ...] = ()
    volumes: tuple[VolumeBinding, ...] = ()


@dataclass(frozen=True)
class Placement:
    """Create a task: this replica of this service on this node, at this generation."""

    service: str
    replica: int
    node: str
    generation: int


@dataclass(frozen=True)
class Removal:
    """Stop and remove a task, and why (for events)."""

    task_id: str
    service: str
    replica: int
    node: str
    reason: str  # "node down", "node draining", "scaled down", "constraint ...", ...


@dataclass(frozen=True)
class Unplaceable:
    service: str
    replica: int
    reason: str  # "no node satisfies node.labels.zone==eu", "insufficient memory on 3 nodes", ...


@dataclass
class Plan:
    place: list[Placement] = field(default_factory=list)
    remove: list[Removal] = field(default_factory=list)
    unplaceable: list[Unplaceable] = field(default_factory=list)
    bind: list[VolumeBinding] = field(default_factory=list)  # volumes placed for the first time

    @property
    def empty(self) -> bool:
        """Nothing to change (unplaceable replicas change nothing either)."""
        return not self.place and not self.remove

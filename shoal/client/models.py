"""What the API answers, as typed wire objects: the client parses every response into these.

The server's views (control/api) are the source; these tolerate fields they do not know (Wire),
so a newer server still talks to an older CLI. The agent-side documents (NodeState, NodeStatus)
are shoal.model's own.
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, Field

from shoal.model.base import Wire
from shoal.model.deploy_wire import ProjectInfo
from shoal.model.join_wire import JoinGrants
from shoal.model.status import Capacity, PeerStatus


class Health(Wire):
    ok: bool = False
    database: bool = False
    error: str = ""


class WhoAmI(Wire):
    kind: str = ""
    role: str | None = None
    name: str | None = None
    node: str | None = None


class Allocation(Wire):
    cpus: float = 0.0
    memory_bytes: int = 0
    tasks: int = 0


class Task(Wire):
    """One replica slot of a service on a node (GET /tasks, and inside nodes and services).

    Inside a node or service the server gives the stored row (`observed_state`, `desired_state`);
    GET /tasks gives `state` and `desired`: both are read.
    """

    id: str = ""
    service: str
    project: str = ""
    replica: int = 0
    node: str | None = None
    state: str = Field(default="", validation_alias=AliasChoices("state", "observed_state"))
    health: str = "none"
    ip: str | None = None
    image: str = ""
    generation: int = 0
    revision: int = 0
    desired: str = Field(default="run", validation_alias=AliasChoices("desired", "desired_state"))
    message: str = ""
    updated: str | None = None
    published: int | None = None  # the cluster version that put it into every node's DNS/ingress


class Node(Wire):
    name: str
    state: str = ""
    availability: str = ""
    role: str = ""
    subnet: str = ""
    endpoint: str | None = None
    address: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    ingress: bool = False
    capacity: Capacity = Field(default_factory=Capacity)
    allocated: Allocation = Field(default_factory=Allocation)
    last_seen: str | None = None
    relay: str = ""  # a NAT'd node: the relay its relayed peers go through now (its agent's report)
    is_relay: bool = False  # an admin marked it a relay and `shoal.relay=false` does not forbid it
    version: str = ""  # the shoal version its agent reported last
    applied_version: int | None = None  # the newest node state its agent fully applied (None: unknown)


class NodeDetail(Node):
    peers: list[PeerStatus] = Field(default_factory=list)
    tasks: list[Task] = Field(default_factory=list)
    agent_version: str = ""


class Rollout(Wire):
    state: str = ""
    message: str = ""


class Project(ProjectInfo):
    """GET /api/v1/projects: one project and its services' short names."""


class Service(Wire):
    name: str
    project: str = ""
    revision: int = 0
    mode: str = "replicated"
    replicas: int = 0
    running: int = 0
    healthy: int = 0
    image: str = ""
    ingress: Any = None
    rollout: Rollout = Field(default_factory=Rollout)
    updated: str | None = None


class Revision(Wire):
    revision: int
    created: str | None = None
    image: str = ""
    change: str = ""


class Rebalance(Wire):
    """/api/v1/services/<name>/rebalance: the moves planned (POST) or started so far (GET)."""

    service: str
    project: str = ""
    state: str = ""  # planned (dry run), running, done, failed
    message: str = ""
    moves: list[dict[str, Any]] = Field(default_factory=list)  # {"replica", "from", "to"}
    dry_run: bool = False


class Unplaced(Wire):
    """A replica the scheduler could not place, and why (`volume data is on node n2 (node down)`)."""

    replica: int
    reason: str = ""


class Serving(Wire):
    """How far the cluster serves the current revision's serving replicas (GET /services/S)."""

    serving: int = 0  # replicas running and not unhealthy
    published: int = 0  # of them, those in every node state from `cluster_version` on
    cluster_version: int | None = None
    lagging: list[str] = Field(default_factory=list)  # nodes up that have not applied it yet


class ServiceDetail(Service):
    spec: dict[str, Any] = Field(default_factory=dict)
    revisions: list[Revision] = Field(default_factory=list)
    tasks: list[Task] = Field(default_factory=list)
    unplaced: list[Unplaced] = Field(default_factory=list)
    serving: Serving | None = None  # None: a server that does not say (the deploy does not wait)


class Volume(Wire):
    """GET /api/v1/volumes: a project's named volume and the node it is bound to."""

    project: str = ""
    name: str
    node: str = ""
    size: int | None = None  # bytes, when the node reported it
    created: str | None = None


class SecretInfo(Wire):
    name: str
    project: str = ""  # "": a global secret
    created: str | None = None


class Server(Wire):
    """A server of the cluster as `GET /servers` lists it (`shoal server ls`)."""

    node: str
    url: str
    leader: bool
    version: str
    last_seen: str | None = None


class RegistryLogin(Wire):
    """A stored registry login as the API lists it (never its password)."""

    host: str
    username: str
    created: str | None = None


class Event(Wire):
    id: int
    time: str = ""
    kind: str = ""
    subject: str = ""
    message: str = ""
    principal: str = ""  # who made it through the API ("token <id> (<name>)", "node <name>"); "" the cluster


class TokenInfo(Wire):
    id: str
    name: str = ""
    role: str = ""
    created: str | None = None


class NewToken(Wire):
    """A token as created: the secret `token` is shown this once."""

    id: str
    role: str
    token: str
    name: str = ""


class NewJoinToken(JoinGrants):
    """A join token as created: the secret `token` is shown this once."""

    id: str
    token: str

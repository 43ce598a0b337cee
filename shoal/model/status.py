"""What an agent observed and reports: container states, health, peers, capacity, heartbeat.

Built by the agent loop, posted to the server, stored by control; shown by `ps`, `node inspect`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shoal.model.base import WIRE_VERSION, Wire

ContainerState = Literal["pending", "pulling", "created", "running", "exited", "failed", "stopped"]
Health = Literal["none", "starting", "healthy", "unhealthy"]


class ContainerStatus(Wire):
    id: str
    service: str = ""
    replica: int = 0
    generation: int = 0
    state: ContainerState
    health: Health = "none"
    ip: str | None = None
    image: str = ""
    image_digest: str = ""
    pid: int | None = None
    exit_code: int | None = None
    started_at: float | None = None
    finished_at: float | None = None
    restarts: int = 0
    message: str = ""  # the reason, as the agent said it: a refused layer, a failed pull, ...


class PeerStatus(Wire):
    public_key: str
    name: str = ""
    endpoint: str | None = None
    latest_handshake: float | None = None  # unix seconds
    rx_bytes: int = 0
    tx_bytes: int = 0
    path: Literal["direct", "relayed"] = "direct"  # relayed: no tunnel of its own, through `via`
    via: str = ""  # the relay's name when relayed


class Capacity(Wire):
    cpus: float = 0.0
    memory_bytes: int = 0


class NodeStatus(Wire):
    wire_version: int = WIRE_VERSION
    node: str
    state_version: int = 0  # the NodeState version this report reflects
    time: float = 0.0
    containers: list[ContainerStatus] = Field(default_factory=list)
    peers: list[PeerStatus] = Field(default_factory=list)
    capacity: Capacity = Field(default_factory=Capacity)
    agent_version: str = ""
    lan_endpoint: str = ""  # a NAT'd node: its WireGuard address:port on the network behind its NAT
    # the newest NodeState every reconcile step applied (DNS, firewall, ingress included), and its
    # cluster_version; None: not known (a pass has not completed yet, or an older agent)
    applied_version: int | None = None
    applied_cluster_version: int | None = None

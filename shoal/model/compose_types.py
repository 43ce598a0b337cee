"""The normalised deploy spec that `shoal.model.compose.parse_compose` returns (types only).

Values are normalised: durations in seconds, sizes in bytes, short forms expanded. Re-exported by
`shoal.model.compose`; import them from there.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shoal.model.base import Wire
from shoal.model.container import HealthCheck, Mount, PullPolicy

MAX_MESSAGE = 240  # a message quotes parts of the file: never more than this of it


class ComposeError(ValueError):
    """A deploy file that cannot be used; the message is one line: `key.path: what (line N)`,
    at most `MAX_MESSAGE` characters whatever the file holds."""

    def __init__(self, message: str) -> None:
        line = (message.strip().splitlines() or [""])[0]
        super().__init__(line if len(line) <= MAX_MESSAGE else f"{line[: MAX_MESSAGE - 1]}…")


class PortSpec(Wire):
    target: int  # the container port
    published: int | None = None  # the node port; None: not published (the overlay still reaches it)
    host_ip: str = ""  # bind the published port to this node address only; "" = every address
    protocol: Literal["tcp", "udp"] = "tcp"


class SecretRef(Wire):
    source: str  # the shoal secret's name (`shoal secret create NAME`)
    target: str  # absolute path in the container, /run/secrets/<name> by default


class ResourceSpec(Wire):
    limit_cpus: float | None = None
    limit_memory_bytes: int | None = None
    limit_pids: int | None = None
    reserve_cpus: float = 0.0
    reserve_memory_bytes: int = 0


class UpdatePolicy(Wire):
    """`deploy.update_config` / `deploy.rollback_config`, with Swarm's defaults."""

    parallelism: int = 1  # 0: all at once
    delay_s: float = 0.0
    failure_action: Literal["pause", "continue", "rollback"] = "pause"
    monitor_s: float = 5.0
    max_failure_ratio: float = 0.0
    order: Literal["stop-first", "start-first"] = "stop-first"


class RestartSpec(Wire):
    """`deploy.restart_policy` (condition any, unlimited attempts by default)."""

    condition: Literal["none", "on-failure", "any"] = "any"
    delay_s: float = 0.5  # first back-off step (doubling); 0.5 s unless `delay` is written
    max_attempts: int = 0  # 0: unlimited
    window_s: float = 0.0


class IngressSpec(Wire):
    """`x-shoal: {ingress: {host, path, port}}`: publish the service over HTTPS through Caddy."""

    host: str
    path: str = "/"
    port: int


class ServiceSpec(Wire):
    """One Compose service, validated and normalised; what a revision of a service is made from."""

    name: str
    image: str
    command: list[str] | None = None
    entrypoint: list[str] | None = None
    environment: dict[str, str] = Field(default_factory=dict)
    ports: list[PortSpec] = Field(default_factory=list)
    mounts: list[Mount] = Field(default_factory=list)  # named volumes, binds, tmpfs (not secrets)
    secrets: list[SecretRef] = Field(default_factory=list)
    healthcheck: HealthCheck | None = None  # None: no check (absent, disable: true or NONE)
    hostname: str | None = None
    working_dir: str | None = None
    user: str | None = None
    mode: Literal["replicated", "global"] = "replicated"
    replicas: int = 1  # ignored for global
    resources: ResourceSpec = Field(default_factory=ResourceSpec)
    constraints: list[str] = Field(default_factory=list)  # normalised: "node.labels.zone==eu"
    preferences: list[str] = Field(default_factory=list)  # spread keys: "node.labels.zone"
    update_config: UpdatePolicy = Field(default_factory=UpdatePolicy)
    rollback_config: UpdatePolicy = Field(default_factory=UpdatePolicy)
    restart_policy: RestartSpec = Field(default_factory=RestartSpec)
    stop_grace_period_s: float = 10.0
    pull_policy: PullPolicy | None = None
    labels: dict[str, str] = Field(default_factory=dict)  # service labels and deploy.labels
    ingress: IngressSpec | None = None

    @property
    def volume_names(self) -> list[str]:
        """The named volumes this service uses: they pin its replicas to the volume's node."""
        return sorted({m.source for m in self.mounts if m.kind == "volume"})


class DeploySpec(Wire):
    project: str
    services: dict[str, ServiceSpec] = Field(default_factory=dict)
    volumes: list[str] = Field(default_factory=list)  # top-level named volumes
    secrets: list[str] = Field(default_factory=list)  # shoal secret names the services use

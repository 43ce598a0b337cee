"""The normalised deploy spec that `shoal.model.compose.parse_compose` returns (types only).

Values are normalised: durations in seconds, sizes in bytes, short forms expanded. Re-exported by
`shoal.model.compose`; import them from there.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shoal.errors import first_line
from shoal.model.base import Wire
from shoal.model.container import HealthCheck, Mount, PullPolicy, Security, Ulimit

__all__ = ["ComposeError", "Security", "Ulimit"]

MAX_MESSAGE = 240  # a message quotes parts of the file: never more than this of it
MAX_ERRORS = 50  # a file with more faults is told its first ones and how many more


class ComposeError(ValueError):
    """A deploy file that cannot be used: one line per fault, each `key.path: what (line N)`, each
    at most `MAX_MESSAGE` characters and at most `MAX_ERRORS` of them, whatever the file holds."""

    def __init__(self, message: str, errors: list[str] | None = None) -> None:
        lines = [_one_line(e) for e in (errors or [message])]
        if len(lines) > MAX_ERRORS:
            lines = [*lines[:MAX_ERRORS], f"... and {len(lines) - MAX_ERRORS} more"]
        self.errors = lines
        super().__init__("\n".join(lines))


def _one_line(message: str) -> str:
    line = first_line(message)
    return line if len(line) <= MAX_MESSAGE else f"{line[: MAX_MESSAGE - 1]}…"


class PolicyRefused(ComposeError):
    """A valid deploy file asking for what the node policy does not grant (the API's 403)."""


class PortSpec(Wire):
    target: int  # the container port
    published: int | None = None  # the node port; None: not published (the overlay still reaches it)
    host_ip: str = ""  # bind the published port to this node address only; "" = every address
    protocol: Literal["tcp", "udp"] = "tcp"
    name: str | None = None
    app_protocol: str | None = None


DependencyCondition = Literal["service_started", "service_healthy", "service_completed_successfully"]


class Dependency(Wire):
    """`depends_on`: start (and, on a deploy, wait for) `service` first."""

    service: str
    condition: DependencyCondition = "service_started"
    required: bool = True


class NetworkAttachment(Wire):
    """A service on one Compose network, with the extra names it answers to there."""

    network: str  # the network's key (see network_key)
    aliases: list[str] = Field(default_factory=list)
    internal: bool = False  # the network is `internal: true`


class NetworkSpec(Wire):
    key: str  # "<project>/<name>", or "/<name>" for an external network (shared across projects)
    name: str  # the key in the file
    internal: bool = False  # members reach the cluster only


def network_key(project: str, name: str, external: bool) -> str:
    return f"/{name}" if external else f"{project}/{name}"


class LogRotation(Wire):
    """`logging: {driver: json-file|local, options: {max-size, max-file}}`."""

    max_bytes: int | None = None  # rotate a container's log past this size
    max_files: int = 1  # files kept, the live one included


class SecretRef(Wire):
    source: str  # the shoal secret's name (`shoal secret create NAME`)
    target: str  # absolute path in the container, /run/secrets/<name> by default
    mode: int | None = None  # the file's permission bits; 0400 when None
    uid: int | None = None  # the file's owner in the container; root when None
    gid: int | None = None


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
    project: str = ""
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
    depends_on: list[Dependency] = Field(default_factory=list)
    networks: list[NetworkAttachment] = Field(default_factory=list)
    container_name: str | None = None  # one more DNS name on every network of the service
    expose: list[str] = Field(default_factory=list)  # informational, as in Compose ("80/tcp")
    restart_name: Literal["no", "always", "on-failure", "unless-stopped"] = "always"
    read_only: bool = False
    init: bool = False
    stop_signal: str | None = None
    ulimits: list[Ulimit] = Field(default_factory=list)
    extra_hosts: dict[str, str] = Field(default_factory=dict)
    dns: list[str] = Field(default_factory=list)  # upstream servers for the container's other names
    dns_search: list[str] = Field(default_factory=list)
    tty: bool = False
    stdin_open: bool = False
    log: LogRotation = Field(default_factory=LogRotation)
    shm_size_bytes: int | None = None
    rebalance: Literal["manual", "auto"] = "manual"  # x-shoal: auto moves replicas back to an even spread
    image_healthcheck: bool = True  # no healthcheck in the file: use the image's HEALTHCHECK
    security: Security = Field(default_factory=Security)

    @property
    def volume_names(self) -> list[str]:
        """The named volumes this service uses: they pin its replicas to the volume's node."""
        return sorted({m.source for m in self.mounts if m.kind == "volume"})


class ProjectSecret(Wire):
    """A secret with `file:`: the CLI sent its content; stored as the project's `<project>_<key>`."""

    name: str
    value_b64: str


class DeploySpec(Wire):
    project: str
    services: dict[str, ServiceSpec] = Field(default_factory=dict)
    volumes: list[str] = Field(default_factory=list)  # top-level named volumes
    secrets: list[str] = Field(default_factory=list)  # shoal secret names the services use
    networks: list[NetworkSpec] = Field(default_factory=list)
    project_secrets: list[ProjectSecret] = Field(default_factory=list)

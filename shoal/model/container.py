"""What one container must be: the unit the agent's runtime turns into a runc container.

Built by the server (control.desired) from a service revision, carried in the node state
document, consumed by the agent's container reconciler and OCI renderer.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shoal.model.base import Wire

RestartName = Literal["no", "on-failure", "always", "unless-stopped"]
MountKind = Literal["volume", "bind", "tmpfs", "secret", "config"]


class Mount(Wire):
    kind: MountKind
    target: str
    source: str = ""  # volume name, host path, or secret name
    external: bool = False  # a volume declared `external: true`: shared by name, not the project's
    read_only: bool = False
    size_bytes: int | None = None  # tmpfs size
    content_b64: str = ""  # a config's content (kind config): written by the agent, mounted read-only
    mode: int | None = None  # a config's, secret's or tmpfs's mode
    uid: int | None = None  # a secret file's owner (kind secret); root when None
    gid: int | None = None


class Resources(Wire):
    memory_bytes: int | None = None  # hard limit
    cpus: float | None = None  # CPU quota, in cores
    pids: int | None = None
    reserve_memory_bytes: int = 0  # scheduling reservation
    reserve_cpus: float = 0.0


class RestartPolicy(Wire):
    name: RestartName = "always"
    max_retries: int = 0  # 0: unlimited (on-failure:N sets N)
    delay_s: float = 0.5  # first back-off step; doubles up to max_delay_s
    max_delay_s: float = 30.0
    window_s: float = 10.0  # a run this long resets the back-off


class HealthCheck(Wire):
    test: list[str]  # Compose form: ["CMD", ...] or ["CMD-SHELL", "..."]
    interval_s: float = 30.0
    timeout_s: float = 30.0
    retries: int = 3
    start_period_s: float = 0.0
    start_interval_s: float | None = None  # the interval during start_period (default: interval_s)


class PortMapping(Wire):
    host_port: int
    container_port: int
    protocol: Literal["tcp", "udp"] = "tcp"
    host_ip: str = ""  # publish on this node address only ("127.0.0.1:8080:80"); "" = every address


class Ulimit(Wire):
    name: str
    soft: int
    hard: int


class Security(Wire):
    """Keys that change what a container may do to its node: the node policy decides."""

    privileged: bool = False
    cap_add: list[str] = Field(default_factory=list)
    cap_drop: list[str] = Field(default_factory=list)
    devices: list[str] = Field(default_factory=list)
    network_mode: str | None = None
    pid: str | None = None
    security_opt: list[str] = Field(default_factory=list)
    sysctls: dict[str, str] = Field(default_factory=dict)
    userns_mode: str | None = None
    seccomp_profile: str | None = None  # the text of security_opt seccomp=<file>, sent by the CLI


PullPolicy = Literal["always", "missing", "never"]


def pulls_always(image: str, policy: PullPolicy | None) -> bool:
    """Whether a start asks the registry again for an image the node already has.

    Compose's `pull_policy` when set; otherwise Kubernetes' rule: a mutable `latest` (or no tag)
    is checked on every start, any other tag or a digest is used as pulled.
    """
    if policy is not None:
        return policy == "always"
    if "@" in image:
        return False
    last = image.rsplit("/", 1)[-1]
    return ":" not in last or last.endswith(":latest")


class ContainerSpec(Wire):
    """One replica of one service at one generation, as a node must run it."""

    id: str  # unique and stable for this replica+generation, e.g. "web-1-3"; the runc id
    service: str = ""
    replica: int = 0
    generation: int = 0
    image: str  # reference as written: "registry:5000/app:1" or "...@sha256:..."
    image_digest: str = ""  # manifest digest, once resolved
    pull_policy: PullPolicy | None = None  # None: see pulls_always
    command: list[str] | None = None  # Compose command: replaces image Cmd
    entrypoint: list[str] | None = None  # Compose entrypoint: replaces image Entrypoint (and Cmd)
    env: dict[str, str] = Field(default_factory=dict)
    working_dir: str | None = None
    user: str | None = None
    hostname: str | None = None
    mounts: list[Mount] = Field(default_factory=list)
    resources: Resources = Field(default_factory=Resources)
    restart: RestartPolicy = Field(default_factory=RestartPolicy)
    healthcheck: HealthCheck | None = None
    ports: list[PortMapping] = Field(default_factory=list)
    ip: str | None = None  # address on the node subnet, allocated by the agent if unset
    stop_grace_s: float = 10.0
    labels: dict[str, str] = Field(default_factory=dict)
    project: str = ""
    networks: list[str] = Field(default_factory=list)  # the keys of the Compose networks it is on
    internal_networks: list[str] = Field(default_factory=list)  # those of them with `internal: true`
    aliases: list[str] = Field(default_factory=list)  # network aliases and container_name: DNS names
    read_only: bool = False  # the root filesystem
    init: bool = False  # an init (tini) as PID 1 that forwards signals and reaps zombies
    stop_signal: str | None = None  # None: SIGTERM
    ulimits: list[Ulimit] = Field(default_factory=list)
    extra_hosts: dict[str, str] = Field(default_factory=dict)  # more /etc/hosts lines
    dns: list[str] = Field(default_factory=list)  # upstreams for names outside the cluster
    dns_search: list[str] = Field(default_factory=list)
    tty: bool = False
    stdin_open: bool = False
    log_max_bytes: int | None = None  # rotate the log past this size
    log_max_files: int = 1
    shm_size_bytes: int | None = None  # /dev/shm; None: 64 MiB as Docker
    image_healthcheck: bool = False  # no check in the file: use the image's HEALTHCHECK
    security: Security = Field(default_factory=Security)


def host_network(container: ContainerSpec) -> bool:
    """`network_mode: host`: the node's own network: no address, no overlay network, no DNS name."""
    return container.security.network_mode == "host"


def networks_of(container: ContainerSpec) -> list[str]:
    """The networks a container is on; one from a server that did not say is on its project's default."""
    return container.networks or [f"{container.project}/default"]

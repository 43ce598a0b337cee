"""The strict schema of one Compose service: every key shoal honours, and the security-relevant
keys it parses so that the node policy can refuse (or, once an admin grants it, allow) them.

Under `shoal.model.compose_top` (the document) and beside `compose_schema` (the shared parts).
Keys Compose has and shoal does not are listed in `UNSUPPORTED` with what to do instead. Pure.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from shoal.model import compose_forms as forms
from shoal.model import compose_keyforms as keyforms
from shoal.model.base import Strict
from shoal.model.compose_schema import (
    Command,
    Count,
    Cpus,
    DeploySection,
    Duration,
    Healthcheck,
    IngressSection,
    KeyValues,
    PortLong,
    SecretLong,
    Size,
    Strings,
    Text,
    VolumeLong,
)

# Compose keys shoal refuses, each with what to do instead (the error says it).
UNSUPPORTED = {
    "build": "build the image and push it to a registry the nodes can pull from; set image:",
    "links": "services on a shared network reach each other by name; use networks aliases",
    "external_links": "declare the other project's network external: true in both files",
    "volumes_from": "share a named volume instead",
    "dns_opt": "remove it (the node's DNS answers cluster names)",
    "ipc": "remove it",
    "cgroup_parent": "remove it (each agent has its own cgroup parent)",
    "cpu_shares": "use cpus or deploy.resources",
    "cpu_quota": "use cpus or deploy.resources",
    "cpu_period": "use cpus or deploy.resources",
    "cpuset": "remove it",
    "cpu_count": "use cpus",
    "cpu_percent": "use cpus",
    "mem_swappiness": "remove it",
    "memswap_limit": "use mem_limit",
    "oom_kill_disable": "remove it",
    "oom_score_adj": "remove it",
    "platform": "remove it: each node pulls the image for its own platform",
    "domainname": "remove it",
    "mac_address": "remove it",
    "develop": "remove it (compose watch is for local development)",
    "labels_file": "write the labels under labels:",
    "annotations": "use labels",
    "group_add": "remove it",
    "runtime": "remove it (shoal runs runc)",
    "isolation": "remove it",
    "storage_opt": "remove it",
    "post_start": "run it from the entrypoint",
    "pre_stop": "handle the stop signal in the program",
    "blkio_config": "remove it",
    "device_cgroup_rules": "remove it",
    "credential_spec": "remove it",
    "use_api_socket": "remove it",
    "provider": "remove it",
    "models": "remove it",
    "gpus": "remove it",
    "attach": "remove it",
}


class DependsOn(Strict):
    condition: Annotated[str, BeforeValidator(keyforms.depends_condition)] = "service_started"
    required: bool = True
    restart: bool = False


class RestartKey(Strict):
    name: Literal["no", "always", "on-failure", "unless-stopped"]
    max_retries: int = 0


class UlimitKey(Strict):
    """One `ulimits:` entry as written (`nofile: {soft, hard}`; a bare number is both)."""

    soft: int
    hard: int


class LoggingSection(Strict):
    driver: str = "json-file"
    options: dict[str, Annotated[str, BeforeValidator(forms.scalar_text)]] = Field(default_factory=dict)


class ServiceNetwork(Strict):
    aliases: Strings = Field(default_factory=list)
    ipv4_address: str | None = None
    ipv6_address: str | None = None
    priority: int = 0  # the order of interfaces: shoal gives one address, so it has none to order
    link_local_ips: Strings = Field(default_factory=list)
    mac_address: str | None = None
    interface_name: str | None = None
    gw_priority: int = 0


class ConfigRef(Strict):
    source: str
    target: str | None = None
    uid: Text | None = None
    gid: Text | None = None
    mode: Annotated[int, BeforeValidator(keyforms.file_mode)] | None = None


class XShoal(Strict):
    ingress: IngressSection | None = None
    rebalance: Literal["manual", "auto"] = "manual"  # auto: the controller evens the spread itself


class ServiceSection(Strict):
    image: str = Field(min_length=1)
    command: Command | None = None
    entrypoint: Command | None = None
    environment: KeyValues = Field(default_factory=dict)
    env_file: Any = None  # read by the CLI into environment; the cross-check refuses one left
    ports: list[Annotated[PortLong, BeforeValidator(forms.port)]] = Field(default_factory=list)
    expose: list[Annotated[str, BeforeValidator(keyforms.expose)]] = Field(default_factory=list)
    volumes: list[Annotated[VolumeLong, BeforeValidator(forms.volume)]] = Field(default_factory=list)
    tmpfs: Strings = Field(default_factory=list)
    secrets: list[Annotated[SecretLong, BeforeValidator(forms.secret)]] = Field(default_factory=list)
    configs: list[Annotated[ConfigRef, BeforeValidator(keyforms.config_ref)]] = Field(default_factory=list)
    healthcheck: Healthcheck | None = None
    hostname: str | None = None
    container_name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")] | None = None
    working_dir: str | None = None
    user: Text | None = None
    restart: Annotated[RestartKey, BeforeValidator(keyforms.restart)] | None = None
    depends_on: Annotated[dict[str, DependsOn], BeforeValidator(keyforms.depends_on)] = Field(
        default_factory=dict
    )
    networks: Annotated[dict[str, ServiceNetwork | None], BeforeValidator(keyforms.service_networks)] = Field(
        default_factory=dict
    )
    network_mode: str | None = None
    deploy: DeploySection = Field(default_factory=DeploySection)
    scale: Count | None = None
    stop_grace_period: Duration = 10.0
    stop_signal: Annotated[str, BeforeValidator(keyforms.stop_signal)] | None = None
    pull_policy: Literal["always", "missing", "if_not_present", "never"] | None = None
    labels: Annotated[dict[str, str], BeforeValidator(keyforms.labels)] = Field(default_factory=dict)
    mem_limit: Size | None = None
    mem_reservation: Size | None = None
    cpus: Cpus | None = None
    pids_limit: int | None = None
    shm_size: Size | None = None
    read_only: bool = False
    init: bool = False
    tty: bool = False
    stdin_open: bool = False
    ulimits: Annotated[dict[str, UlimitKey], BeforeValidator(keyforms.ulimits)] = Field(default_factory=dict)
    extra_hosts: Annotated[dict[str, str], BeforeValidator(keyforms.host_map)] = Field(default_factory=dict)
    dns: Annotated[list[str], BeforeValidator(keyforms.dns_servers)] = Field(default_factory=list)
    dns_search: Strings = Field(default_factory=list)
    logging: LoggingSection | None = None
    profiles: Strings = Field(default_factory=list)
    extends: Any = None  # resolved before validation (compose_extends); one left is refused
    # Security-relevant: parsed here, refused by the node policy unless an admin grants them.
    privileged: bool = False
    cap_add: Strings = Field(default_factory=list)
    cap_drop: Strings = Field(default_factory=list)
    devices: list[Any] = Field(default_factory=list)
    pid: str | None = None
    security_opt: Strings = Field(default_factory=list)
    sysctls: Annotated[dict[str, str], BeforeValidator(keyforms.sysctls)] = Field(default_factory=dict)
    userns_mode: str | None = None
    x_shoal: XShoal = Field(default_factory=XShoal, alias="x-shoal")

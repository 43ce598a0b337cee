"""The strict schema of a Compose document as shoal supports it (docs/compose.md is the matrix).

Under `shoal.model.compose`: every model is `Strict` (an unknown key is an error); short forms are
expanded by before-validators (`compose_forms`) so errors point at the item at fault. Keys Compose
has but shoal does not support are refused by name before validation. Pure.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from shoal.model import compose_forms as forms
from shoal.model.base import Strict
from shoal.model.constraints import parse_constraint
from shoal.model.durations import parse_duration, parse_size
from shoal.model.limits import MAX_COUNT, MAX_PIDS, MAX_REPLICAS

Duration = Annotated[float, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]
Cpus = Annotated[float, BeforeValidator(forms.cpus)]
Command = Annotated[list[str], BeforeValidator(forms.command)]
KeyValues = Annotated[dict[str, str], BeforeValidator(forms.key_values)]
Text = Annotated[str, BeforeValidator(forms.scalar_text)]
PortNumber = Annotated[int, Field(ge=1, le=65535)]
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
Replicas = Annotated[int, Field(ge=0, le=MAX_REPLICAS)]


def _constraint(text: str) -> str:
    return str(parse_constraint(text))


def _spread(text: str) -> str:
    if not text.startswith("node.labels.") or text == "node.labels.":
        raise ValueError(f'cannot spread over "{text}" (use node.labels.NAME)')
    return text


class PortLong(Strict):
    target: PortNumber
    published: Annotated[PortNumber | None, BeforeValidator(forms.port_number)] = None
    host_ip: str = ""
    protocol: Literal["tcp", "udp"] = "tcp"
    mode: Literal["host", "ingress"] = "ingress"


class TmpfsOptions(Strict):
    size: Size | None = None


class VolumeLong(Strict):
    type: Literal["volume", "bind", "tmpfs"]
    source: str = ""
    target: str
    read_only: bool = False
    tmpfs: TmpfsOptions | None = None

    @model_validator(mode="after")
    def _check(self) -> VolumeLong:
        if not self.target.startswith("/"):
            raise ValueError(f'target "{self.target}" must be an absolute path')
        if self.type == "bind" and not self.source.startswith("/"):
            raise ValueError(f'bind source "{self.source}" must be an absolute path on the node')
        if self.type == "volume" and not forms.resource_name(self.source):
            raise ValueError(f'volume "{self.source}" needs a name (NAME:/path)')
        if self.type == "tmpfs" and self.source:
            raise ValueError("a tmpfs mount takes no source")
        if self.tmpfs is not None and self.type != "tmpfs":
            raise ValueError("tmpfs options need type: tmpfs")
        return self


class SecretLong(Strict):
    source: str
    target: str | None = None


class Healthcheck(Strict):
    test: Annotated[list[str], BeforeValidator(forms.health_test)] | None = None
    interval: Duration = 30.0
    timeout: Duration = 30.0
    retries: Count = 3
    start_period: Duration = 0.0
    disable: bool = False

    @model_validator(mode="after")
    def _needs_test(self) -> Healthcheck:
        if self.test is None and not self.disable:
            raise ValueError("test is required (or disable: true)")
        return self


class Limits(Strict):
    cpus: Cpus | None = None
    memory: Size | None = None
    pids: Annotated[int, Field(ge=1, le=MAX_PIDS)] | None = None


class Reservations(Strict):
    cpus: Cpus | None = None
    memory: Size | None = None


class ResourcesSection(Strict):
    limits: Limits = Field(default_factory=Limits)
    reservations: Reservations = Field(default_factory=Reservations)


class Preference(Strict):
    spread: Annotated[str, AfterValidator(_spread)]


class PlacementSection(Strict):
    constraints: list[Annotated[str, AfterValidator(_constraint)]] = Field(default_factory=list)
    preferences: list[Preference] = Field(default_factory=list)


class UpdateConfig(Strict):
    parallelism: Count = 1
    delay: Duration = 0.0
    failure_action: Literal["pause", "continue", "rollback"] = "pause"
    monitor: Duration = 5.0
    max_failure_ratio: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = 0.0
    order: Literal["stop-first", "start-first"] = "stop-first"


class RestartPolicySection(Strict):
    condition: Literal["none", "on-failure", "any"] = "any"
    delay: Duration | None = None
    max_attempts: Count = 0
    window: Duration = 0.0


class DeploySection(Strict):
    mode: Literal["replicated", "global"] = "replicated"
    replicas: Replicas | None = None
    resources: ResourcesSection = Field(default_factory=ResourcesSection)
    placement: PlacementSection = Field(default_factory=PlacementSection)
    update_config: UpdateConfig = Field(default_factory=UpdateConfig)
    rollback_config: UpdateConfig = Field(default_factory=UpdateConfig)
    restart_policy: RestartPolicySection = Field(default_factory=RestartPolicySection)
    labels: KeyValues = Field(default_factory=dict)

    @model_validator(mode="after")
    def _global_has_no_replicas(self) -> DeploySection:
        if self.mode == "global" and self.replicas is not None:
            raise ValueError("replicas cannot be set with mode: global")
        return self


class IngressSection(Strict):
    host: str = Field(min_length=1)
    path: str = "/"
    port: PortNumber

    @model_validator(mode="after")
    def _absolute_path(self) -> IngressSection:
        if not self.path.startswith("/"):
            raise ValueError(f'path "{self.path}" must start with /')
        return self


class XShoal(Strict):
    ingress: IngressSection | None = None


class ServiceSection(Strict):
    image: str = Field(min_length=1)
    command: Command | None = None
    entrypoint: Command | None = None
    environment: KeyValues = Field(default_factory=dict)
    ports: list[Annotated[PortLong, BeforeValidator(forms.port)]] = Field(default_factory=list)
    volumes: list[Annotated[VolumeLong, BeforeValidator(forms.volume)]] = Field(default_factory=list)
    secrets: list[Annotated[SecretLong, BeforeValidator(forms.secret)]] = Field(default_factory=list)
    healthcheck: Healthcheck | None = None
    hostname: str | None = None
    working_dir: str | None = None
    user: Text | None = None
    deploy: DeploySection = Field(default_factory=DeploySection)
    stop_grace_period: Duration = 10.0
    pull_policy: Literal["always", "missing", "if_not_present", "never"] | None = None
    labels: KeyValues = Field(default_factory=dict)
    x_shoal: XShoal = Field(default_factory=XShoal, alias="x-shoal")


class TopVolume(Strict):
    """A top-level named volume: lives on the node where its service first runs (no options)."""


class TopSecret(Strict):
    external: bool = False
    name: str | None = None
    file: str | None = None  # Compose has them; refused with a clear message by the cross-check
    environment: str | None = None


class Document(Strict):
    services: dict[str, ServiceSection]
    volumes: dict[str, TopVolume | None] = Field(default_factory=dict)
    secrets: dict[str, TopSecret] = Field(default_factory=dict)
    name: str | None = None
    version: Any = None  # ignored, as Compose does

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        """`volumes:` with no entries is null in YAML: read it as empty."""
        if isinstance(data, dict):
            return {k: ({} if v is None and k in ("volumes", "secrets") else v) for k, v in data.items()}
        return data

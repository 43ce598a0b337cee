"""The strict schema of a Compose document's parts as shoal supports them (docs/compose.md).

Under `shoal.model.compose`: every model is `Strict` (an unknown key is an error); short forms are
expanded by before-validators (`compose_forms`, `compose_keyforms`) so errors point at the item
at fault. The service and the top level are in `compose_service` and `compose_top`. Pure.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from shoal.model import compose_forms as forms
from shoal.model import compose_keyforms as keyforms
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
Strings = Annotated[list[str], BeforeValidator(keyforms.string_list)]
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
    name: str | None = None  # a name for the port, shown by `service inspect`
    app_protocol: str | None = None  # what speaks on it (http, grpc...), shown likewise


class TmpfsOptions(Strict):
    size: Size | None = None
    mode: int | None = None


class VolumeOptions(Strict):
    nocopy: bool = False  # shoal never copies the image's files into a new volume


class BindOptions(Strict):
    create_host_path: bool = True
    selinux: Literal["z", "Z"] | None = None  # relabelling: a no-op where SELinux is off


class VolumeLong(Strict):
    type: Literal["volume", "bind", "tmpfs"]
    source: str = ""
    target: str
    read_only: bool = False
    tmpfs: TmpfsOptions | None = None
    volume: VolumeOptions | None = None
    bind: BindOptions | None = None
    consistency: str | None = None  # Docker Desktop's hint: a no-op on Linux

    @model_validator(mode="after")
    def _check(self) -> VolumeLong:
        if not self.target.startswith("/"):
            raise ValueError(f'target "{self.target}" must be an absolute path')
        if self.type == "bind" and not self.source.startswith(("/", ".", "~")):
            raise ValueError(f'bind source "{self.source}" must be a path (/abs, ./file)')
        if self.type == "volume" and not self.source:
            raise ValueError("the volume's source is empty (an unset variable?)")
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
    uid: Annotated[int, BeforeValidator(keyforms.numeric_id)] | None = None
    gid: Annotated[int, BeforeValidator(keyforms.numeric_id)] | None = None
    mode: Annotated[int, BeforeValidator(keyforms.file_mode)] | None = None  # 0400 unless written


class Healthcheck(Strict):
    test: Annotated[list[str], BeforeValidator(forms.health_test)] | None = None
    interval: Duration = 30.0
    timeout: Duration = 30.0
    retries: Count = 3
    start_period: Duration = 0.0
    start_interval: Duration | None = None
    disable: bool = False


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

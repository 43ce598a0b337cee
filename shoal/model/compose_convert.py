"""A validated Compose service → the normalised `ServiceSpec`. Pure.

Under `shoal.model.compose_build`: the schema has expanded short forms and parsed durations and
sizes, the cross-checks passed; this maps Compose's names onto shoal's (mounts, resources,
policies, networks, configs) and resolves each key's precedence the way Compose does.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass

from shoal.model import compose_forms as forms
from shoal.model.compose_schema import Healthcheck, RestartPolicySection, SecretLong, UpdateConfig, VolumeLong
from shoal.model.compose_service import ConfigRef, ServiceSection
from shoal.model.compose_top import Document
from shoal.model.compose_types import (
    Dependency,
    IngressSpec,
    LogRotation,
    NetworkAttachment,
    NetworkSpec,
    PortSpec,
    ProjectSecret,
    ResourceSpec,
    RestartSpec,
    SecretRef,
    ServiceSpec,
    UpdatePolicy,
    network_key,
)
from shoal.model.container import HealthCheck, Mount, Security, Ulimit
from shoal.model.durations import parse_size

SECRETS_DIR = "/run/secrets"
SECURITY_KEYS = {
    "privileged", "cap_add", "cap_drop", "pid", "security_opt", "sysctls", "userns_mode", "network_mode",
}  # fmt: skip
_RESTART_CONDITIONS = {"no": "none", "always": "any", "unless-stopped": "any", "on-failure": "on-failure"}


@dataclass(frozen=True)
class Context:
    project: str
    doc: Document
    files: Mapping[str, bytes]


def service_spec(name: str, s: ServiceSection, ctx: Context) -> ServiceSpec:
    deploy = s.deploy
    return ServiceSpec(
        name=name,
        project=ctx.project,
        image=s.image,
        command=s.command,
        entrypoint=s.entrypoint,
        environment=dict(s.environment),
        ports=[PortSpec(**p.model_dump(include=set(PortSpec.model_fields))) for p in s.ports],
        mounts=_mounts(s, ctx),
        secrets=[_secret(r, ctx) for r in s.secrets],
        healthcheck=_healthcheck(s.healthcheck),
        image_healthcheck=s.healthcheck is None or (s.healthcheck.test is None and not s.healthcheck.disable),
        hostname=s.hostname,
        working_dir=s.working_dir,
        user=s.user,
        mode=deploy.mode,
        replicas=deploy.replicas if deploy.replicas is not None else (s.scale if s.scale is not None else 1),
        resources=_resources(s),
        constraints=list(deploy.placement.constraints),
        preferences=[p.spread for p in deploy.placement.preferences],
        update_config=_policy(deploy.update_config),
        rollback_config=_policy(deploy.rollback_config),
        restart_policy=_restart(s),
        restart_name=s.restart.name
        if s.restart and "restart_policy" not in deploy.model_fields_set
        else "always",
        stop_grace_period_s=s.stop_grace_period,
        pull_policy="missing" if s.pull_policy == "if_not_present" else s.pull_policy,
        labels={**s.labels, **deploy.labels},
        ingress=IngressSpec(**s.x_shoal.ingress.model_dump()) if s.x_shoal.ingress else None,
        **_extras(s, ctx),
    )


def _extras(s: ServiceSection, ctx: Context) -> dict[str, object]:
    """The keys of real files beyond the original set, as ServiceSpec fields."""
    log = s.logging.options if s.logging else {}
    return {
        "depends_on": [_dependency(d, h.condition, h.required) for d, h in s.depends_on.items()],
        "networks": _attachments(s, ctx),
        "container_name": s.container_name,
        "rebalance": s.x_shoal.rebalance,
        "expose": list(s.expose),
        "read_only": s.read_only,
        "init": s.init,
        "stop_signal": s.stop_signal,
        "ulimits": [Ulimit(name=n, soft=u.soft, hard=u.hard) for n, u in sorted(s.ulimits.items())],
        "extra_hosts": dict(s.extra_hosts),
        "dns": list(s.dns),
        "dns_search": list(s.dns_search),
        "tty": s.tty,
        "stdin_open": s.stdin_open,
        "log": LogRotation(
            max_bytes=parse_size(log["max-size"]) if "max-size" in log else None,
            max_files=int(log.get("max-file", "1")) if str(log.get("max-file", "1")).isdigit() else 1,
        ),
        "shm_size_bytes": s.shm_size,
        "security": Security(
            **s.model_dump(
                include={
                    "privileged",
                    "cap_add",
                    "cap_drop",
                    "pid",
                    "security_opt",
                    "sysctls",
                    "userns_mode",
                    "network_mode",
                }
            ),
            devices=[str(d) for d in s.devices],
            seccomp_profile=_seccomp_profile(s, ctx),
        ),
    }


def _seccomp_profile(s: ServiceSection, ctx: Context) -> str | None:
    paths = [p for p in map(forms.seccomp_file, s.security_opt) if p is not None]
    return ctx.files[paths[-1]].decode("utf-8", "replace") if paths and paths[-1] in ctx.files else None


def _attachments(s: ServiceSection, ctx: Context) -> list[NetworkAttachment]:
    if s.network_mode == "host":
        return []
    wanted = s.networks or {"default": None}
    return [
        NetworkAttachment(
            network=_key(net, ctx),
            aliases=list(attach.aliases) if attach else [],
            internal=_internal(net, ctx),
        )
        for net, attach in sorted(wanted.items())
    ]


def _key(name: str, ctx: Context) -> str:
    top = ctx.doc.networks.get(name)
    external = bool(top and top.external)
    return network_key(ctx.project, (top.name if top and top.name and external else None) or name, external)


def project_networks(ctx: Context) -> list[NetworkSpec]:
    """Every network of the file, and `default` (which every service without networks is on)."""
    names = sorted({*ctx.doc.networks, "default"})
    return [NetworkSpec(key=_key(n, ctx), name=n, internal=_internal(n, ctx)) for n in names]


def _internal(name: str, ctx: Context) -> bool:
    top = ctx.doc.networks.get(name)
    return top is not None and top.internal


def _dependency(service: str, condition: str, required: bool) -> Dependency:
    return Dependency.model_validate({"service": service, "condition": condition, "required": required})


def project_secrets(ctx: Context) -> list[ProjectSecret]:
    return [
        ProjectSecret(name=f"{ctx.project}_{key}", value_b64=base64.b64encode(ctx.files[s.file]).decode())
        for key, s in sorted(ctx.doc.secrets.items())
        if s.file is not None and not s.external and s.file in ctx.files
    ]


def _mounts(s: ServiceSection, ctx: Context) -> list[Mount]:
    mounts = [_mount(v, ctx) for v in s.volumes]
    mounts += [_tmpfs(entry) for entry in s.tmpfs]
    mounts += [_config(ref, ctx) for ref in s.configs]
    return mounts


def _mount(v: VolumeLong, ctx: Context) -> Mount:
    if v.type == "bind" and forms.local_path(v.source):
        content = base64.b64encode(ctx.files.get(v.source, b"")).decode()
        return Mount(kind="config", target=v.target, source=v.source, read_only=True, content_b64=content)
    size = v.tmpfs.size if v.tmpfs is not None else None
    mode = v.tmpfs.mode if v.tmpfs is not None else None
    source = _volume_name(v.source, ctx) if v.type == "volume" else v.source
    top = ctx.doc.volumes.get(v.source) if v.type == "volume" else None
    external = bool(top is not None and top.external)
    return Mount(
        kind=v.type,
        target=v.target,
        source=source,
        read_only=v.read_only,
        size_bytes=size,
        mode=mode,
        external=external,
    )


def _volume_name(key: str, ctx: Context) -> str:
    """An external volume is found by its name; the project's own keep their key (the volume's
    identity is (project, name))."""
    top = ctx.doc.volumes.get(key)
    return (top.name or key) if top is not None and top.external else key


def _tmpfs(entry: str) -> Mount:
    path, _, options = entry.partition(":")
    values = dict(o.partition("=")[::2] for o in options.split(",") if "=" in o)
    size = parse_size(values["size"]) if "size" in values else None
    mode = int(values["mode"], 8) if values.get("mode", "").isdigit() else None
    return Mount(kind="tmpfs", target=path, size_bytes=size, mode=mode)


def _config(ref: ConfigRef, ctx: Context) -> Mount:
    top = ctx.doc.configs[ref.source]
    raw = ctx.files.get(top.file, b"") if top.file is not None else (top.content or "").encode()
    target = ref.target or f"/{ref.source}"
    return Mount(
        kind="config",
        target=target,
        source=ref.source,
        read_only=True,
        content_b64=base64.b64encode(raw).decode(),
        mode=ref.mode,
    )


def _secret(ref: SecretLong, ctx: Context) -> SecretRef:
    top = ctx.doc.secrets[ref.source]
    name = top.name or ref.source if top.external else f"{ctx.project}_{ref.source}"
    target = ref.target or ref.source
    path = target if target.startswith("/") else f"{SECRETS_DIR}/{target}"
    return SecretRef(source=name, target=path, mode=ref.mode, uid=ref.uid, gid=ref.gid)


def _healthcheck(h: Healthcheck | None) -> HealthCheck | None:
    if h is None or h.disable or h.test == ["NONE"]:
        return None
    return HealthCheck(
        test=h.test or [],  # empty: the image's own test, with these timings
        interval_s=h.interval,
        timeout_s=h.timeout,
        retries=h.retries,
        start_period_s=h.start_period,
        start_interval_s=h.start_interval,
    )


def _resources(s: ServiceSection) -> ResourceSpec:
    limits, reserve = s.deploy.resources.limits, s.deploy.resources.reservations
    return ResourceSpec(
        limit_cpus=limits.cpus if limits.cpus is not None else s.cpus,
        limit_memory_bytes=limits.memory if limits.memory is not None else s.mem_limit,
        limit_pids=limits.pids
        if limits.pids is not None
        else (s.pids_limit if s.pids_limit and s.pids_limit > 0 else None),
        reserve_cpus=reserve.cpus or 0.0,
        reserve_memory_bytes=reserve.memory or s.mem_reservation or 0,
    )


def _positive(value: int | None) -> int | None:
    return value if value is not None and value > 0 else None  # -1 or 0: unlimited


def _policy(u: UpdateConfig) -> UpdatePolicy:
    return UpdatePolicy(
        parallelism=u.parallelism,
        delay_s=u.delay,
        failure_action=u.failure_action,
        monitor_s=u.monitor,
        max_failure_ratio=u.max_failure_ratio,
        order=u.order,
    )


def _restart_name(s: ServiceSection) -> str:
    swarm = "restart_policy" in s.deploy.model_fields_set
    return s.restart.name if s.restart is not None and not swarm else "always"


def _restart(s: ServiceSection) -> RestartSpec:
    """`deploy.restart_policy` when written (Swarm's key wins, as in `docker stack`), else `restart`."""
    r: RestartPolicySection = s.deploy.restart_policy
    if "restart_policy" not in s.deploy.model_fields_set and s.restart is not None:
        condition = _RESTART_CONDITIONS[s.restart.name]
        return RestartSpec.model_validate({"condition": condition, "max_attempts": s.restart.max_retries})
    return RestartSpec(
        condition=r.condition,
        delay_s=0.5 if r.delay is None else r.delay,
        max_attempts=r.max_attempts,
        window_s=r.window,
    )

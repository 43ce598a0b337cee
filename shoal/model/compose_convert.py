"""A validated Compose service section → the normalised `ServiceSpec`. Pure.

Under `shoal.model.compose_build`: the schema has already expanded short forms and parsed
durations and sizes; this maps Compose's names onto shoal's (mounts, resources, policies).
"""

from __future__ import annotations

from shoal.model.compose_schema import (
    Healthcheck,
    RestartPolicySection,
    SecretLong,
    ServiceSection,
    UpdateConfig,
    VolumeLong,
)
from shoal.model.compose_types import (
    IngressSpec,
    PortSpec,
    ResourceSpec,
    RestartSpec,
    SecretRef,
    ServiceSpec,
    UpdatePolicy,
)
from shoal.model.container import HealthCheck, Mount

SECRETS_DIR = "/run/secrets"


def service_spec(name: str, s: ServiceSection, secret_names: dict[str, str]) -> ServiceSpec:
    deploy = s.deploy
    return ServiceSpec(
        name=name,
        image=s.image,
        command=s.command,
        entrypoint=s.entrypoint,
        environment=dict(s.environment),
        ports=[
            PortSpec(target=p.target, published=p.published, host_ip=p.host_ip, protocol=p.protocol)
            for p in s.ports
        ],
        mounts=[_mount(v) for v in s.volumes],
        secrets=[_secret(r, secret_names) for r in s.secrets],
        healthcheck=_healthcheck(s.healthcheck),
        hostname=s.hostname,
        working_dir=s.working_dir,
        user=s.user,
        mode=deploy.mode,
        replicas=1 if deploy.replicas is None else deploy.replicas,
        resources=_resources(s),
        constraints=list(deploy.placement.constraints),
        preferences=[p.spread for p in deploy.placement.preferences],
        update_config=_policy(deploy.update_config),
        rollback_config=_policy(deploy.rollback_config),
        restart_policy=_restart(deploy.restart_policy),
        stop_grace_period_s=s.stop_grace_period,
        pull_policy="missing" if s.pull_policy == "if_not_present" else s.pull_policy,
        labels={**s.labels, **deploy.labels},
        ingress=IngressSpec(**s.x_shoal.ingress.model_dump()) if s.x_shoal.ingress else None,
    )


def _mount(v: VolumeLong) -> Mount:
    size = v.tmpfs.size if v.tmpfs is not None else None
    return Mount(kind=v.type, target=v.target, source=v.source, read_only=v.read_only, size_bytes=size)


def _secret(ref: SecretLong, names: dict[str, str]) -> SecretRef:
    target = ref.target or ref.source
    path = target if target.startswith("/") else f"{SECRETS_DIR}/{target}"
    return SecretRef(source=names[ref.source], target=path)


def _healthcheck(h: Healthcheck | None) -> HealthCheck | None:
    if h is None or h.disable or h.test is None or h.test == ["NONE"]:
        return None
    return HealthCheck(
        test=h.test,
        interval_s=h.interval,
        timeout_s=h.timeout,
        retries=h.retries,
        start_period_s=h.start_period,
    )


def _resources(s: ServiceSection) -> ResourceSpec:
    limits, reserve = s.deploy.resources.limits, s.deploy.resources.reservations
    return ResourceSpec(
        limit_cpus=limits.cpus,
        limit_memory_bytes=limits.memory,
        limit_pids=limits.pids,
        reserve_cpus=reserve.cpus or 0.0,
        reserve_memory_bytes=reserve.memory or 0,
    )


def _policy(u: UpdateConfig) -> UpdatePolicy:
    return UpdatePolicy(
        parallelism=u.parallelism,
        delay_s=u.delay,
        failure_action=u.failure_action,
        monitor_s=u.monitor,
        max_failure_ratio=u.max_failure_ratio,
        order=u.order,
    )


def _restart(r: RestartPolicySection) -> RestartSpec:
    return RestartSpec(
        condition=r.condition,
        delay_s=0.5 if r.delay is None else r.delay,
        max_attempts=r.max_attempts,
        window_s=r.window,
    )

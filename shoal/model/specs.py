"""A service spec → the containers that run it, its fingerprint, and what changed between revisions.

After `shoal.model.compose.parse_compose`: the server stamps `to_container_spec` into each task's
container, skips a revision whose spec equals the stored one, and shows `diff_specs` as a
revision's change ("image: app:1 → app:2"). Pure.
"""

from __future__ import annotations

import json
from typing import Any

from shoal.model.compose_types import ServiceSpec
from shoal.model.container import ContainerSpec, Mount, PortMapping, Resources, RestartName, RestartPolicy

_RESTART_NAMES: dict[str, RestartName] = {"none": "no", "on-failure": "on-failure", "any": "always"}
_SHOWN_WIDTH = 60
ENV_PREFIX = "environment."
REDACTED = "(redacted)"


def container_id(service: str, replica: int, generation: int) -> str:
    return f"{service}-{replica}-{generation}"


def to_container_spec(service: ServiceSpec, replica: int, generation: int) -> ContainerSpec:
    """One replica of the service at one generation, as a node must run it."""
    return ContainerSpec(
        id=container_id(service.name, replica, generation),
        service=service.name,
        replica=replica,
        generation=generation,
        image=service.image,
        command=service.command,
        entrypoint=service.entrypoint,
        env=dict(service.environment),
        working_dir=service.working_dir,
        user=service.user,
        hostname=service.hostname,
        mounts=_mounts(service),
        resources=_resources(service),
        restart=_restart(service),
        healthcheck=service.healthcheck.model_copy() if service.healthcheck else None,
        ports=[
            PortMapping(
                host_port=p.published, container_port=p.target, protocol=p.protocol, host_ip=p.host_ip
            )
            for p in service.ports
            if p.published is not None
        ],
        stop_grace_s=service.stop_grace_period_s,
        pull_policy=service.pull_policy,
        labels=dict(service.labels),
        project=service.project,
        networks=[n.network for n in service.networks],
        internal_networks=[n.network for n in service.networks if n.internal],
        aliases=_aliases(service),
        read_only=service.read_only,
        init=service.init,
        stop_signal=service.stop_signal,
        ulimits=[u.model_copy() for u in service.ulimits],
        extra_hosts=dict(service.extra_hosts),
        dns=list(service.dns),
        dns_search=list(service.dns_search),
        tty=service.tty,
        stdin_open=service.stdin_open,
        log_max_bytes=service.log.max_bytes,
        log_max_files=service.log.max_files,
        shm_size_bytes=service.shm_size_bytes,
        image_healthcheck=service.image_healthcheck,
        security=service.security.model_copy(deep=True),
    )


def _aliases(service: ServiceSpec) -> list[str]:
    names = {a for n in service.networks for a in n.aliases}
    names |= {service.container_name} if service.container_name else set()
    return sorted(names - {service.name.rsplit(".", 1)[-1]})


def _mounts(service: ServiceSpec) -> list[Mount]:
    secrets = [
        Mount(
            kind="secret", source=s.source, target=s.target, read_only=True, mode=s.mode, uid=s.uid, gid=s.gid
        )
        for s in service.secrets
    ]
    return [m.model_copy() for m in service.mounts] + secrets


def _resources(service: ServiceSpec) -> Resources:
    r = service.resources
    return Resources(
        memory_bytes=r.limit_memory_bytes,
        cpus=r.limit_cpus,
        pids=r.limit_pids,
        reserve_memory_bytes=r.reserve_memory_bytes,
        reserve_cpus=r.reserve_cpus,
    )


def _restart(service: ServiceSpec) -> RestartPolicy:
    p = service.restart_policy
    name = "unless-stopped" if service.restart_name == "unless-stopped" else _RESTART_NAMES[p.condition]
    policy = RestartPolicy(name=name, max_retries=p.max_attempts, delay_s=p.delay_s)
    if p.window_s > 0:
        policy.window_s = p.window_s
    return policy


def diff_specs(a: ServiceSpec, b: ServiceSpec, hide_env: bool = False) -> list[str]:
    """What changed from a to b, one line per changed setting: ["image: app:1 → app:2", ...].
    With `hide_env`, an environment variable's line names it but not its values (a stored
    revision's change text is shown to viewers, and env values are often credentials)."""
    old, new = _flatten(a.model_dump(mode="json")), _flatten(b.model_dump(mode="json"))
    return [
        _changed(key, old.get(key), new.get(key), hide_env)
        for key in sorted(old.keys() | new.keys())
        if old.get(key) != new.get(key)
    ]


def _changed(key: str, old: Any, new: Any, hide_env: bool) -> str:
    if hide_env and key.startswith(ENV_PREFIX):
        return f"{key}: {_hidden(old)} → {_hidden(new)}"
    return f"{key}: {_shown(old)} → {_shown(new)}"


def _hidden(value: Any) -> str:
    return "(none)" if value is None else REDACTED


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested maps become dotted keys (environment.A); lists stay whole."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _shown(value: Any) -> str:
    if value is None:
        return "(none)"
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return text if len(text) <= _SHOWN_WIDTH else text[: _SHOWN_WIDTH - 1] + "…"

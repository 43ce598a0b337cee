"""From YAML text to `DeploySpec`: load, refuse unsupported keys, validate, cross-check, normalise.

The body of `shoal.model.compose.parse_compose`. Pure.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from shoal.model import compose_forms as forms
from shoal.model.compose_convert import service_spec
from shoal.model.compose_schema import Document, ServiceSection
from shoal.model.compose_types import ComposeError, DeploySpec
from shoal.model.compose_yaml import error_at, from_validation, load

# Compose keys shoal knows and refuses, so the error says "not supported" rather than "unknown".
UNSUPPORTED_TOP = {"networks", "configs", "include", "models"}
UNSUPPORTED_SERVICE = {
    "build", "networks", "network_mode", "depends_on", "links", "external_links", "configs",
    "cap_add", "cap_drop", "privileged", "devices", "env_file", "container_name", "restart",
    "extra_hosts", "dns", "dns_search", "dns_opt", "sysctls", "ulimits", "tmpfs", "logging",
    "security_opt", "profiles", "pid", "ipc", "userns_mode", "cgroup_parent", "shm_size",
    "mem_limit", "cpus", "cpu_shares", "pids_limit", "init", "expose", "stdin_open", "tty",
    "platform", "domainname", "mac_address", "read_only", "stop_signal",
    "volumes_from", "extends", "scale", "develop", "labels_file", "annotations", "group_add",
    "oom_score_adj", "runtime", "isolation", "storage_opt", "healthcheck_start_interval",
}  # fmt: skip


def build_deploy(text: str, project: str) -> DeploySpec:
    root = load(text)
    if not isinstance(root, dict):
        raise ComposeError("the deploy file must be a YAML mapping with a services: key")
    data = _without_extensions(root)
    try:
        doc = Document.model_validate(data)
    except ValidationError as bad:
        raise from_validation(root, bad) from None
    name = _project_name(project or doc.name or "")
    _cross_check(root, doc)
    secret_names = {k: (s.name or k) for k, s in doc.secrets.items()}
    services = {n: service_spec(n, s, secret_names) for n, s in doc.services.items()}
    return DeploySpec(
        project=name,
        services=services,
        volumes=sorted(doc.volumes),
        secrets=sorted({r.source for s in services.values() for r in s.secrets}),
    )


def _without_extensions(root: dict[str, Any]) -> dict[str, Any]:
    """Drop `x-*` keys (Compose extensions) except a service's `x-shoal`, and a service's empty
    sections; refuse known-unsupported keys."""
    for key in root:
        if key in UNSUPPORTED_TOP:
            raise error_at(root, [key], "not supported by shoal")
    data = {k: v for k, v in root.items() if not str(k).startswith("x-")}
    services = data.get("services")
    if isinstance(services, dict):
        data["services"] = {n: _service_keys(root, n, s) for n, s in services.items()}
    return data


def _service_keys(root: dict[str, Any], name: str, body: Any) -> Any:
    if not isinstance(body, dict):
        return body
    for key in body:
        if key in UNSUPPORTED_SERVICE:
            raise error_at(root, ["services", name, key], "not supported by shoal (see docs/compose.md)")
    # an empty section (`deploy:` with nothing under it) is null in YAML: read it as absent
    return {
        k: v for k, v in body.items() if v is not None and (k == "x-shoal" or not str(k).startswith("x-"))
    }


def _project_name(name: str) -> str:
    if not name:
        raise ComposeError("no project name: pass one (--project) or set name: in the file")
    if not forms.dns_label(name.replace("_", "-")):
        raise ComposeError(f'invalid project name "{name}" (lowercase letters, digits, "-", "_")')
    return name


def _cross_check(root: dict[str, Any], doc: Document) -> None:
    if not doc.services:
        raise error_at(root, ["services"], "no services defined")
    for key, secret in doc.secrets.items():
        if not secret.external:
            raise error_at(
                root, ["secrets", key], f"only external secrets are supported (shoal secret create {key})"
            )
    for name, service in doc.services.items():
        if not forms.dns_label(name):
            raise error_at(
                root, ["services", name], f'service name "{name}" must be a DNS label (a-z, 0-9, "-")'
            )
        _check_references(root, doc, name, service)


def _check_references(root: dict[str, Any], doc: Document, name: str, service: ServiceSection) -> None:
    for index, vol in enumerate(service.volumes):
        if vol.type == "volume" and vol.source not in doc.volumes:
            raise error_at(
                root,
                ["services", name, "volumes", index],
                f'volume "{vol.source}" is not declared under the top-level volumes:',
            )
    for index, ref in enumerate(service.secrets):
        if ref.source not in doc.secrets:
            raise error_at(
                root,
                ["services", name, "secrets", index],
                f'secret "{ref.source}" is not declared under the top-level secrets:',
            )

"""Cross-checks of a validated Compose document: references resolve, no cycles, what shoal cannot do
is said plainly. Each fault goes into the `Problems` of the build with its key path and line.

Under `shoal.model.compose_build`. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from shoal.model import compose_forms as forms
from shoal.model.compose_errors import Problems
from shoal.model.compose_service import ServiceSection
from shoal.model.compose_top import Document, TopConfig

SERVICE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
NETWORK_DRIVERS = (None, "bridge", "overlay", "default")
LOG_DRIVERS = (None, "json-file", "local")
LOG_OPTIONS = {"max-size", "max-file"}
TMPFS_OPTIONS = re.compile(r"(size|mode|uid|gid)=[0-9a-zA-Z.]+|noexec|exec|nosuid|suid|nodev|dev|ro|rw")
ULIMITS = {
    "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss",
    "rtprio", "rttime", "sigpending", "stack", "as",
}  # fmt: skip


def cross_check(
    problems: Problems,
    doc: Document,
    services: dict[str, ServiceSection],
    files: Mapping[str, bytes],
    names: set[str],
) -> None:
    """`names`: every service of the file, also those whose own section has faults."""
    _top_level(problems, doc, files)
    for name, service in services.items():
        here: list[int | str] = ["services", name]
        if not SERVICE_NAME.fullmatch(name):
            problems.add(here, f'service name "{name}" must be lowercase letters, digits, "-" and "_"')
        _references(problems, doc, here, service, files)
        _runtime(problems, here, service)
        _networking(problems, doc, here, service)
    _dependencies(problems, services, names)
    _container_names(problems, services)


def _top_level(problems: Problems, doc: Document, files: Mapping[str, bytes]) -> None:
    _networks(problems, doc)
    _volumes_and_secrets(problems, doc, files)
    for key, config in doc.configs.items():
        _config(problems, key, config, files)


def _networks(problems: Problems, doc: Document) -> None:
    for key, net in doc.networks.items():
        if net is None:
            continue
        if net.driver not in NETWORK_DRIVERS:
            problems.add(["networks", key, "driver"], f'driver "{net.driver}" is not supported (remove it)')
        for option in ("driver_opts", "ipam"):
            if getattr(net, option) is not None:
                problems.add(
                    ["networks", key, option], "not supported by shoal: the overlay assigns addresses"
                )
        if net.enable_ipv6:
            problems.add(["networks", key, "enable_ipv6"], "not supported by shoal (the overlay is IPv4)")


def _volumes_and_secrets(problems: Problems, doc: Document, files: Mapping[str, bytes]) -> None:
    for key, vol in doc.volumes.items():
        if vol is not None and vol.driver not in (None, "local"):
            problems.add(["volumes", key, "driver"], f'driver "{vol.driver}" is not supported (only local)')
        if vol is not None and vol.driver_opts:
            problems.add(["volumes", key, "driver_opts"], "not supported by shoal (a volume is a directory)")
    for key, secret in doc.secrets.items():
        if secret.environment is not None:
            problems.add(["secrets", key, "environment"], "not supported by shoal: use file: or external:")
        elif not secret.external and secret.file is None:
            problems.add(["secrets", key], "needs file: or external: true")
        elif (
            secret.file is not None
            and secret.file not in files
            and not problems.has(["secrets", key, "file"])
        ):
            problems.add(
                ["secrets", key, "file"], f'"{secret.file}" was not sent (deploy with the shoal CLI)'
            )
    for key, config in doc.configs.items():
        _config(problems, key, config, files)


def _config(problems: Problems, key: str, config: TopConfig, files: Mapping[str, bytes]) -> None:
    if config.external or config.template_driver or config.environment is not None:
        problems.add(["configs", key], "only file: and content: configs are supported")
    elif config.file is not None and config.file not in files and not problems.has(["configs", key, "file"]):
        problems.add(["configs", key, "file"], _not_sent(config.file))
    elif config.file is None and config.content is None:
        problems.add(["configs", key], "needs file: or content:")


def _references(
    problems: Problems, doc: Document, here: list[int | str], s: ServiceSection, files: Mapping[str, bytes]
) -> None:
    for index, vol in enumerate(s.volumes):
        if vol.type == "volume" and vol.source not in doc.volumes:
            problems.add(
                [*here, "volumes", index],
                f'volume "{vol.source}" is not declared under the top-level volumes:',
            )
        local = vol.type == "bind" and forms.local_path(vol.source)
        if local and vol.source not in files and not problems.has([*here, "volumes", index]):
            problems.add(
                [*here, "volumes", index],
                f'"{vol.source}" was not sent: only a file can be bound from your machine (deploy with '
                "the shoal CLI; use a named volume for a directory)",
            )
    for index, ref in enumerate(s.secrets):
        if ref.source not in doc.secrets:
            problems.add(
                [*here, "secrets", index],
                f'secret "{ref.source}" is not declared under the top-level secrets:',
            )
    for index, cfg in enumerate(s.configs):
        if cfg.source not in doc.configs:
            problems.add(
                [*here, "configs", index],
                f'config "{cfg.source}" is not declared under the top-level configs:',
            )
    if s.env_file is not None:
        problems.add([*here, "env_file"], "must be read by the shoal CLI (deploy with shoal deploy -f)")
    if s.extends is not None:
        problems.add([*here, "extends"], "could not be resolved")


def _undeclared(kind: str, name: str) -> str:
    return f'{kind} "{name}" is not declared under the top-level {kind}s:'


def _not_sent(path: str) -> str:
    return f'"{path}" was not sent (deploy with the shoal CLI)'


def _runtime(problems: Problems, here: list[int | str], s: ServiceSection) -> None:
    if s.logging is not None:
        if s.logging.driver not in LOG_DRIVERS:
            problems.add(
                [*here, "logging", "driver"],
                f'driver "{s.logging.driver}" is not supported: logs stay on the node (json-file, local)',
            )
        for option in sorted(set(s.logging.options) - LOG_OPTIONS):
            problems.add([*here, "logging", "options", option], "not supported by shoal (max-size, max-file)")
    for index, entry in enumerate(s.tmpfs):
        path, _, options = entry.partition(":")
        if not path.startswith("/") or not all(TMPFS_OPTIONS.fullmatch(o) for o in options.split(",") if o):
            problems.add(
                [*here, "tmpfs", index], f'invalid tmpfs "{entry[:80]}" (/path[:size=64m,mode=1777])'
            )
    for name in s.ulimits:
        if name not in ULIMITS:
            problems.add([*here, "ulimits", name], f'unknown ulimit "{name}"')


def _networking(problems: Problems, doc: Document, here: list[int | str], s: ServiceSection) -> None:
    if s.network_mode is not None and s.network_mode != "host":
        problems.add(
            [*here, "network_mode"],
            f'network_mode "{s.network_mode}" is not supported: services share the project\'s networks',
        )
    for net, attach in s.networks.items():
        if net not in doc.networks and net != "default":
            problems.add(
                [*here, "networks", net], f'network "{net}" is not declared under the top-level networks:'
            )
        for key in ("ipv4_address", "ipv6_address", "mac_address", "interface_name"):
            if attach is not None and getattr(attach, key):
                problems.add(
                    [*here, "networks", net, key], "not supported by shoal: reach the service by its name"
                )
        if attach is not None and attach.link_local_ips:
            problems.add([*here, "networks", net, "link_local_ips"], "not supported by shoal")


def _dependencies(problems: Problems, services: dict[str, ServiceSection], names: set[str]) -> None:
    for name, s in services.items():
        for dep, how in s.depends_on.items():
            if dep == name:
                problems.add(["services", name, "depends_on", dep], "a service cannot depend on itself")
            elif dep not in names and how.required:
                problems.add(["services", name, "depends_on", dep], f'service "{dep}" is not in this file')
    cycle = _cycle({n: [d for d in s.depends_on if d in services and d != n] for n, s in services.items()})
    if cycle:
        problems.add(["services", cycle[0], "depends_on"], f"dependency cycle: {' -> '.join(cycle)}")


def _cycle(graph: dict[str, list[str]]) -> list[str]:
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str]:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt, [*path, nxt])):
                return found
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return []


def _container_names(problems: Problems, services: dict[str, ServiceSection]) -> None:
    seen: dict[str, str] = {}
    for name, s in services.items():
        if s.container_name is None:
            continue
        replicas = s.deploy.replicas if s.deploy.replicas is not None else (s.scale or 1)
        if replicas > 1 or s.deploy.mode == "global":
            problems.add(["services", name, "container_name"], "a container name needs exactly one replica")
        if s.container_name in seen:
            problems.add(
                ["services", name, "container_name"],
                f"already the container name of {seen[s.container_name]}",
            )
        seen.setdefault(s.container_name, name)

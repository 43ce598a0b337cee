"""The node policy's say on a deploy file: keys that change what a container may do to its node.

Under `shoal.model.compose_build`. `privileged`, `cap_add`, `devices`, `network_mode: host`,
`pid`, absolute bind mounts, `security_opt`, `sysctls` and `userns_mode` are parsed into the
spec and refused here, one error each naming the key and its line, unless the policy grants
them. The default policy grants none: an admin's policy (issue 18) is what can. Pure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from shoal.model.compose_errors import Problems
from shoal.model.compose_service import ServiceSection
from shoal.model.security_keys import SecurityKeyError, capability_name, namespaced_sysctl, parse_device

KEYS = (
    "privileged", "cap_add", "cap_drop", "devices", "network_mode", "pid", "security_opt", "sysctls",
    "userns_mode", "host_binds",
)  # fmt: skip


@dataclass(frozen=True)
class NodePolicy:
    """What deploy files may do to nodes; `allowed` holds the keys of KEYS an admin granted."""

    allowed: frozenset[str] = field(default_factory=frozenset)


def policy_problems(problems: Problems, services: dict[str, ServiceSection], policy: NodePolicy) -> None:
    for name, service in services.items():
        for key, index in _asked(service):
            if _grant(key) in policy.allowed:
                continue
            loc: list[int | str] = (
                ["services", name, key] if index is None else ["services", name, key, index]
            )
            what = "absolute bind mounts" if key == "volumes" else key
            problems.add(loc, f"the node policy does not allow {what} (an admin grants it in the policy)")


def key_problems(problems: Problems, services: dict[str, ServiceSection]) -> None:
    """Security keys written as Docker would refuse them, whatever the policy grants."""
    for name, s in services.items():
        for key, message in _key_faults(s):
            problems.add(["services", name, key], message)


def _key_faults(s: ServiceSection) -> list[tuple[str, str]]:
    namespaced = "net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*"
    faults = [
        ("sysctls", f"{k}: not a namespaced sysctl ({namespaced}): it would change the node")
        for k in s.sysctls
        if not namespaced_sysctl(k)
    ]
    if s.network_mode == "host":
        net = [k for k in s.sysctls if k.startswith("net.")]
        faults += [("sysctls", f"{k}: not with network_mode: host (the node's own)") for k in net]
    if s.userns_mode not in (None, "host"):
        faults.append(("userns_mode", f"{s.userns_mode!r}: shoal runs no user namespace; only host"))
    if s.pid not in (None, "host"):
        faults.append(("pid", f"{s.pid!r}: only host is supported"))
    for key, values in (("cap_add", s.cap_add), ("cap_drop", s.cap_drop)):
        faults += [(key, str(e)) for e in _errors(capability_name, values)]
    faults += [("devices", str(e)) for e in _errors(parse_device, [str(d) for d in s.devices])]
    unknown = [o for o in s.security_opt if not o.startswith(SECURITY_OPTS)]
    faults += [("security_opt", f"{o!r}: use seccomp=..., no-new-privileges[:true|false]") for o in unknown]
    return faults


SECURITY_OPTS = ("seccomp=", "seccomp:", "no-new-privileges", "label=", "label:", "apparmor=", "apparmor:")


def _errors(check: Callable[[str], object], values: list[str]) -> list[SecurityKeyError]:
    out = []
    for v in values:
        try:
            check(v)
        except SecurityKeyError as e:
            out.append(e)
    return out


def _grant(key: str) -> str:
    return "host_binds" if key == "volumes" else key


def _asked(s: ServiceSection) -> list[tuple[str, int | None]]:
    asked: list[tuple[str, int | None]] = [
        (key, None)
        for key, used in (
            ("privileged", s.privileged),
            ("cap_add", bool(s.cap_add)),
            ("devices", bool(s.devices)),
            ("pid", s.pid is not None),
            ("security_opt", bool(s.security_opt)),
            ("sysctls", bool(s.sysctls)),
            ("userns_mode", s.userns_mode is not None),
            ("network_mode", s.network_mode == "host"),
        )
        if used
    ]
    asked += [
        ("volumes", i) for i, v in enumerate(s.volumes) if v.type == "bind" and v.source.startswith("/")
    ]
    return asked

"""The node policy's say on a deploy file: keys that change what a container may do to its node.

Under `shoal.model.compose_build`. `privileged`, `cap_add`, `devices`, `network_mode: host`,
`pid: host`, absolute bind mounts, `security_opt`, `sysctls` and `userns_mode` are parsed into the
spec and checked here against the `Grant` the admin's policy (`shoal.model.policy`) gives the
deploy's role and project: one refusal each, naming the key, its line and the policy entry that
would grant it. Binds of forbidden host paths, and published ports that are the node's own (SSH,
WireGuard, the API, the agent), are refused whatever the policy. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from shoal.model.compose_errors import Problems
from shoal.model.compose_service import ServiceSection
from shoal.model.policy import Grant, normalise
from shoal.model.ports import port_key
from shoal.model.security_keys import SecurityKeyError, capability_name, namespaced_sysctl, parse_device

Refusal = tuple[list[int | str], str]  # key path in the file, message


def policy_problems(problems: Problems, services: dict[str, ServiceSection], grant: Grant) -> None:
    for name, service in services.items():
        for loc, message in refusals(name, service, grant):
            problems.add(loc, message)


def refusals(name: str, s: ServiceSection, g: Grant) -> Iterator[Refusal]:
    base: list[int | str] = ["services", name]
    who = f"role {g.role} or project {g.project}"
    if s.privileged and not g.privileged:
        yield [*base, "privileged"], _ask(who, "privileged: true")
    for i, cap in enumerate(s.cap_add):
        wanted = cap.strip().upper()
        wanted = wanted if wanted == "ALL" or wanted.startswith("CAP_") else f"CAP_{wanted}"
        if wanted not in g.cap_add and "ALL" not in g.cap_add:
            yield [*base, "cap_add", i], _ask(who, f"cap_add: [{wanted}]")
    for i, device in enumerate(s.devices):
        path = normalise(_device_path(device))
        if path not in g.devices:
            yield [*base, "devices", i], _ask(who, f"devices: [{path}]")
    yield from _security_opts(base, s.security_opt, g, who)
    for key in s.sysctls:
        if key not in g.sysctls and "*" not in g.sysctls:
            yield [*base, "sysctls", key], _ask(who, f"sysctls: [{key}]")
    yield from _modes(base, s, g, who)
    for i, volume in enumerate(s.volumes):
        if volume.type == "bind" and volume.source.startswith("/"):
            yield from _bind([*base, "volumes", i], volume.source, volume.read_only, g, who)
    yield from _reserved_ports([*base, "ports"], s, dict(g.reserved_ports))


def _reserved_ports(base: list[int | str], s: ServiceSection, reserved: dict[str, str]) -> Iterator[Refusal]:
    for i, port in enumerate(s.ports):
        key = port_key(port.published, port.protocol) if port.published is not None else ""
        if key in reserved:
            yield [*base, i], f"host port {key} is reserved for {reserved[key]} (no policy can grant it)"


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


def _modes(base: list[int | str], s: ServiceSection, g: Grant, who: str) -> Iterator[Refusal]:
    if s.network_mode == "host" and not g.network_mode_host:
        yield [*base, "network_mode"], _ask(who, "network_mode_host: true")
    if s.pid == "host" and not g.pid_host:
        yield [*base, "pid"], _ask(who, "pid_host: true")
    if s.userns_mode is not None and not g.userns_mode:
        yield [*base, "userns_mode"], _ask(who, "userns_mode: true")


def _security_opts(base: list[int | str], opts: list[str], g: Grant, who: str) -> Iterator[Refusal]:
    for i, opt in enumerate(opts):
        needed = security_grant(opt)
        if needed == "privileged: true" and not g.privileged:
            yield [*base, "security_opt", i], _ask(who, needed)
        elif needed not in (None, "privileged: true") and needed not in g.security_opt:
            yield [*base, "security_opt", i], _ask(who, f"security_opt: [{needed}]")


def security_grant(opt: str) -> str | None:
    """The policy entry an option needs; None for those that only restrict (always allowed)."""
    key, _, value = opt.replace("=", ":", 1).partition(":")
    key, value = key.strip(), value.strip()
    if key == "seccomp":
        return "seccomp=unconfined" if value == "unconfined" else "seccomp=custom"
    if key in ("no-new-privileges", "no_new_privileges"):
        return None if value in ("", "true") else "no-new-privileges:false"
    return "privileged: true"  # apparmor, label...: what they loosen is a privileged container's


def _bind(loc: list[int | str], source: str, read_only: bool, g: Grant, who: str) -> Iterator[Refusal]:
    path = normalise(source)
    shown = path if path == source else f"{source} (that is {path})"
    bad = g.forbids(path)
    if bad is not None:
        yield loc, f"bind of {shown} is never allowed: it exposes {bad} (no policy can grant it)"
        return
    mode = g.bind_mode(path)
    if mode is None:
        yield loc, _ask(who, f"binds: [{{path: <a prefix of {path}>, mode: ro}}]", f"bind of {shown}")
    elif mode == "ro" and not read_only:
        yield loc, f"bind of {shown} must be read-only (add :ro): the policy grants its prefix read-only"


def _device_path(device: Any) -> str:
    if isinstance(device, dict):
        return str(device.get("source", ""))
    return str(device).split(":", 1)[0]


def _ask(who: str, entry: str, what: str = "") -> str:
    refused = f"{what} refused" if what else "refused"
    return f"{refused} by the node policy (an admin grants it to {who} with `{entry}` in a grant)"

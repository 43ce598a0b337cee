"""What a container may do to its node, in config.json: capabilities, seccomp, devices, sysctls,
host namespaces and privilege, each as Docker renders the Compose key.

Under `shoal.agent.render` (used by `oci.render_config`). The node policy (compose_policy) has
already decided whether the deploy may ask; this module only makes each key do what Docker does,
with Docker's defaults when nothing is asked. Pure: host facts (device numbers, the profile a
deploy shipped) come in through `SecurityInputs`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shoal.agent.render import seccomp
from shoal.model.container import Security
from shoal.model.security_keys import (
    ALL_CAPABILITIES,
    DEFAULT_CAPABILITIES,
    SecurityKeyError,
    capability_name,
    namespaced_sysctl,
    parse_device,
)

Json = dict[str, Any]

SecurityError = SecurityKeyError  # a key that cannot be rendered (unknown capability, missing device)


@dataclass(frozen=True)
class HostDevice:
    """A device node on the node, as stat(2) sees it."""

    path: str
    kind: str  # "c" or "b"
    major: int
    minor: int
    mode: int  # permission bits
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class SecurityInputs:
    devices: Mapping[str, HostDevice] = field(default_factory=dict)  # host path -> node (devices:)
    host_devices: Sequence[HostDevice] = ()  # every device on the node (privileged)
    machine: str | None = None  # uname -m; None: this node's
    host_capabilities: tuple[str, ...] = ()  # the agent's bounding set; () = every capability


def capabilities(sec: Security, host: Sequence[str] = ()) -> list[str]:
    """Docker's merge (moby oci/caps.TweakCapabilities): defaults, + cap_add, - cap_drop; ALL.

    ALL (and privileged) means all the node has: runc cannot grant what the agent lacks.
    """
    every = [c for c in ALL_CAPABILITIES if not host or c in host]
    if sec.privileged:
        return every
    adds = [capability_name(c) for c in sec.cap_add]
    drops = [capability_name(c) for c in sec.cap_drop]
    base = every if "ALL" in adds else list(DEFAULT_CAPABILITIES)
    if "ALL" in drops:
        base = [c for c in ALL_CAPABILITIES if c in adds]  # drop ALL, then add back what was asked
    else:
        base = [c for c in base if c not in drops] + [c for c in adds if c != "ALL" and c not in base]
    return [c for c in ALL_CAPABILITIES if c in base]


def options(sec: Security) -> dict[str, str]:
    """security_opt as key -> value: ``no-new-privileges`` alone means true, as in Docker."""
    out: dict[str, str] = {}
    for opt in sec.security_opt:
        cut = min((i for i in (opt.find("="), opt.find(":")) if i >= 0), default=len(opt))
        out[opt[:cut].strip()] = opt[cut + 1 :].strip() if cut < len(opt) else "true"
    return out


def no_new_privileges(sec: Security) -> bool:
    return options(sec).get("no-new-privileges", "false").lower() == "true"


def render_seccomp(sec: Security, caps: Sequence[str], inputs: SecurityInputs) -> Json | None:
    """linux.seccomp, or None: privileged or seccomp=unconfined load no filter."""
    wanted = options(sec).get("seccomp")
    if sec.privileged or wanted == "unconfined":
        return None
    if wanted:
        if sec.seccomp_profile is None:
            raise SecurityError(f"seccomp profile {wanted!r} was not shipped with the deploy")
        profile = seccomp.custom(sec.seccomp_profile, wanted)
        # OCI's form (architectures) goes as written; Docker's is resolved like the default.
        return profile if "architectures" in profile else seccomp.render(profile, caps, inputs.machine)
    return seccomp.render(seccomp.default_profile(), caps, inputs.machine)


def apply(linux_base: Json, sec: Security, caps: Sequence[str], inputs: SecurityInputs) -> Json:
    """linux: namespaces, devices, sysctls, seccomp, masked and read-only paths."""
    linux = copy.deepcopy(linux_base)
    host_ns = {"network"} if sec.network_mode == "host" else set()
    host_ns |= {"pid"} if sec.pid == "host" else set()
    linux["namespaces"] = [ns for ns in linux["namespaces"] if ns["type"] not in host_ns]
    nodes = list(inputs.host_devices) if sec.privileged else []
    linux["devices"] = [_device(d, d.path) for d in nodes] + render_devices(sec.devices, inputs)
    rules = [{"allow": False, "access": "rwm"}]
    if sec.privileged:
        rules.append({"allow": True, "access": "rwm"})
    rules += [_cgroup_rule(d, a) for d, a in _granted(sec.devices, inputs)]
    linux.setdefault("resources", {})["devices"] = rules
    if sec.sysctls:
        linux["sysctl"] = dict(check_sysctls(sec.sysctls, host_network=sec.network_mode == "host"))
    profile = render_seccomp(sec, caps, inputs)
    if profile is not None:
        linux["seccomp"] = profile
    if sec.privileged:
        linux["maskedPaths"], linux["readonlyPaths"] = [], []
    return linux


def check_sysctls(sysctls: Mapping[str, str], host_network: bool = False) -> Mapping[str, str]:
    for name in sysctls:
        if not namespaced_sysctl(name):
            raise SecurityError(f"sysctl {name}: not namespaced (only net.*, kernel.shm*, kernel.msg*, "
                                "kernel.sem, fs.mqueue.*)")  # fmt: skip
        if host_network and name.startswith("net."):
            raise SecurityError(f"sysctl {name}: not with network_mode: host (it would set the node's)")
    return sysctls


def _granted(devices: Sequence[str], inputs: SecurityInputs) -> list[tuple[HostDevice, str]]:
    out = []
    for text in devices:
        host, _, access = parse_device(text)
        if host not in inputs.devices:
            raise SecurityError(f"device {host}: not a device node on this node")
        out.append((inputs.devices[host], access))
    return out


def render_devices(devices: Sequence[str], inputs: SecurityInputs) -> list[Json]:
    return [
        _device(d, parse_device(t)[1]) for t, (d, _) in zip(devices, _granted(devices, inputs), strict=True)
    ]


def _device(d: HostDevice, target: str) -> Json:
    return {"path": target, "type": d.kind, "major": d.major, "minor": d.minor,
            "fileMode": d.mode, "uid": d.uid, "gid": d.gid}  # fmt: skip


def _cgroup_rule(d: HostDevice, access: str) -> Json:
    return {"allow": True, "type": d.kind, "major": d.major, "minor": d.minor, "access": access}


def capability_names(mask: int) -> tuple[str, ...]:
    """A /proc/<pid>/status Cap* mask as names."""
    return tuple(c for i, c in enumerate(ALL_CAPABILITIES) if mask >> i & 1)


def readonly_sys(mounts: Sequence[Json], privileged: bool) -> list[Json]:
    """Docker mounts /sys read-write only for a privileged container."""
    if not privileged:
        return [dict(m) for m in mounts]
    return [
        {**m, "options": [o for o in m.get("options", []) if o != "ro"] + ["rw"]}
        if m["destination"] in ("/sys", "/sys/fs/cgroup")
        else dict(m)
        for m in mounts
    ]

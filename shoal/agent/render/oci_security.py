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
from shoal.errors import ShoalError
from shoal.model.container import Security

Json = dict[str, Any]

# Docker's default capability set (moby oci/caps/defaults.go).
DEFAULT_CAPABILITIES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]  # fmt: skip
# Every capability Linux defines (capability.h, 0..40), in number order.
ALL_CAPABILITIES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
]  # fmt: skip
# Namespaced sysctls Docker accepts (moby opts.ValidateSysctl): exact names and prefixes.
SYSCTL_NAMES = frozenset({"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                          "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"})  # fmt: skip
SYSCTL_PREFIXES = ("fs.mqueue.", "net.")


class SecurityError(ShoalError):
    """A security key that cannot be rendered (unknown capability, a missing device...)."""


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
    seccomp_profile: str | None = None  # the text of the deploy's seccomp=<file>
    machine: str | None = None  # uname -m; None: this node's
    host_capabilities: tuple[str, ...] = ()  # the agent's bounding set; () = every capability


def capability_name(name: str) -> str:
    """``sys_admin``, ``CAP_SYS_ADMIN``, ``Sys_Admin`` -> ``CAP_SYS_ADMIN`` (``ALL`` stays)."""
    upper = name.strip().upper()
    if upper in ("ALL", "CAP_ALL"):
        return "ALL"
    full = upper if upper.startswith("CAP_") else "CAP_" + upper
    if full not in ALL_CAPABILITIES:
        raise SecurityError(f"unknown capability {name!r}")
    return full


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
        if inputs.seccomp_profile is None:
            raise SecurityError(f"seccomp profile {wanted!r} was not shipped with the deploy")
        profile = seccomp.custom(inputs.seccomp_profile, wanted)
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


def namespaced_sysctl(name: str) -> bool:
    return name in SYSCTL_NAMES or name.startswith(SYSCTL_PREFIXES)


def parse_device(text: str) -> tuple[str, str, str]:
    """``/dev/x[:/dev/y[:rwm]]`` -> (host path, container path, access)."""
    parts = text.split(":")
    if len(parts) > 3 or not parts[0].startswith("/"):
        raise SecurityError(f"device {text!r}: use /dev/host[:/dev/container[:rwm]]")
    host = parts[0]
    target, access = host, "rwm"
    if len(parts) == 2 and not parts[1].startswith("/"):
        access = parts[1]
    elif len(parts) >= 2:
        target = parts[1]
        access = parts[2] if len(parts) == 3 else "rwm"
    if not target.startswith("/") or not access or set(access) - set("rwm"):
        raise SecurityError(f"device {text!r}: use /dev/host[:/dev/container[:rwm]]")
    return host, target, access


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

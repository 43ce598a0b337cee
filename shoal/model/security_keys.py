"""The security keys of a service as Docker reads them: capability names, namespaced sysctls,
device strings. Shared by the parse-time checks (compose_policy) and the agent's renderer
(agent.render.oci_security), so both refuse the same things with the same words. Pure.
"""

from __future__ import annotations

from shoal.errors import ShoalError

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


class SecurityKeyError(ShoalError):
    """A security key written in a way Docker would refuse."""


def capability_name(name: str) -> str:
    """``sys_admin``, ``CAP_SYS_ADMIN``, ``Sys_Admin`` -> ``CAP_SYS_ADMIN`` (``ALL`` stays)."""
    upper = name.strip().upper()
    if upper in ("ALL", "CAP_ALL"):
        return "ALL"
    full = upper if upper.startswith("CAP_") else "CAP_" + upper
    if full not in ALL_CAPABILITIES:
        raise SecurityKeyError(f"unknown capability {name!r}")
    return full


def namespaced_sysctl(name: str) -> bool:
    return name in SYSCTL_NAMES or name.startswith(SYSCTL_PREFIXES)


def parse_device(text: str) -> tuple[str, str, str]:
    """``/dev/x[:/dev/y[:rwm]]`` -> (host path, container path, access)."""
    parts = text.split(":")
    if len(parts) > 3 or not parts[0].startswith("/"):
        raise SecurityKeyError(f"device {text!r}: use /dev/host[:/dev/container[:rwm]]")
    host = parts[0]
    target, access = host, "rwm"
    if len(parts) == 2 and not parts[1].startswith("/"):
        access = parts[1]
    elif len(parts) >= 2:
        target = parts[1]
        access = parts[2] if len(parts) == 3 else "rwm"
    if not target.startswith("/") or not access or set(access) - set("rwm"):
        raise SecurityKeyError(f"device {text!r}: use /dev/host[:/dev/container[:rwm]]")
    return host, target, access

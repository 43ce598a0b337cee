#!/usr/bin/env python3
"""Generates shoal/agent/render/data/seccomp_default.json from Debian's containers-common profile.

Source: Debian package golang-github-containers-common (0.50.1+ds1-4 when generated), file
/usr/share/containers/seccomp.json, upstream github.com/containers/common pkg/seccomp/seccomp.json,
Apache-2.0 (see /usr/share/doc/golang-github-containers-common/copyright). That profile derives
from moby's profiles/seccomp/default.json but allows, without conditions, syscalls moby grants
only with CAP_SYS_ADMIN (podman's rootless needs them); shoal wants Docker's defaults, so the
ALIGN table below moves them back behind their capability, as moby's profile does. The
differences are listed in shoal/agent/render/data/README.md.

Usage: python3 scripts/gen_seccomp.py [/usr/share/containers/seccomp.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SOURCE = Path("/usr/share/containers/seccomp.json")
TARGET = Path(__file__).resolve().parent.parent / "shoal/agent/render/data/seccomp_default.json"

# Syscalls the containers-common profile allows to everyone that Docker allows only with a
# capability (moby gates these in its default profile): name -> capability.
GATED = {
    "bpf": "CAP_SYS_ADMIN", "fanotify_init": "CAP_SYS_ADMIN", "fsconfig": "CAP_SYS_ADMIN",
    "fsmount": "CAP_SYS_ADMIN", "fsopen": "CAP_SYS_ADMIN", "fspick": "CAP_SYS_ADMIN",
    "lookup_dcookie": "CAP_SYS_ADMIN", "mount": "CAP_SYS_ADMIN", "mount_setattr": "CAP_SYS_ADMIN",
    "move_mount": "CAP_SYS_ADMIN", "open_tree": "CAP_SYS_ADMIN", "perf_event_open": "CAP_SYS_ADMIN",
    "quotactl": "CAP_SYS_ADMIN", "quotactl_fd": "CAP_SYS_ADMIN", "setdomainname": "CAP_SYS_ADMIN",
    "sethostname": "CAP_SYS_ADMIN", "setns": "CAP_SYS_ADMIN", "syslog": "CAP_SYS_ADMIN",
    "umount": "CAP_SYS_ADMIN", "umount2": "CAP_SYS_ADMIN", "unshare": "CAP_SYS_ADMIN",
    "clone": "CAP_SYS_ADMIN", "clone3": "CAP_SYS_ADMIN",
    "kcmp": "CAP_SYS_PTRACE", "pidfd_getfd": "CAP_SYS_PTRACE", "process_madvise": "CAP_SYS_PTRACE",
    "process_vm_readv": "CAP_SYS_PTRACE", "process_vm_writev": "CAP_SYS_PTRACE",
    "ptrace": "CAP_SYS_PTRACE",
    "reboot": "CAP_SYS_BOOT", "get_mempolicy": "CAP_SYS_NICE", "mbind": "CAP_SYS_NICE",
    "set_mempolicy": "CAP_SYS_NICE", "set_mempolicy_home_node": "CAP_SYS_NICE",
}  # fmt: skip
# Allowed by containers-common, never by Docker's default profile (the kernel keyring is not
# namespaced): they fall to the default action, EPERM.
DENIED = {"keyctl", "add_key", "request_key"}
# CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET: clone without CAP_SYS_ADMIN may
# not make namespaces; clone3 (flags in memory, not filterable) gets ENOSYS so libc falls back.
CLONE_NS_MASK = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000
ENOSYS = 38
EPERM = 1  # moby's defaultErrnoRet; containers-common returns ENOSYS for what it does not list


def align(profile: dict) -> dict:
    """The profile with GATED behind their capability and DENIED removed."""
    rules = []
    for rule in profile["syscalls"]:
        conditional = rule.get("includes") or rule.get("excludes") or rule.get("args")
        names = rule["names"]
        if rule["action"] == "SCMP_ACT_ALLOW" and not conditional:
            names = [n for n in names if n not in GATED and n not in DENIED]
        elif rule.get("includes", {}).get("caps") == ["CAP_SYS_ADMIN"] or rule.get("excludes", {}).get(
            "caps"
        ) == ["CAP_SYS_ADMIN"]:
            names = [n for n in names if n not in DENIED]
        if names:
            rules.append({**rule, "names": names})
    by_cap: dict[str, list[str]] = {}
    for name, cap in GATED.items():
        by_cap.setdefault(cap, []).append(name)
    for cap, names in sorted(by_cap.items()):
        rules.append({"names": sorted(names), "action": "SCMP_ACT_ALLOW", "includes": {"caps": [cap]}})
    rules += _clone_rules()
    return {**profile, "defaultErrnoRet": EPERM, "syscalls": rules}


def _clone_rules() -> list[dict]:
    masked = {"value": CLONE_NS_MASK, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}
    return [
        {
            "names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, **masked}],
            "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]},
        },
        {
            "names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 1, **masked}],
            "comment": "s390 parameter ordering for clone is different",
            "includes": {"arches": ["s390", "s390x"]}, "excludes": {"caps": ["CAP_SYS_ADMIN"]},
        },
        {
            "names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS,
            "excludes": {"caps": ["CAP_SYS_ADMIN"]},
        },
    ]  # fmt: skip


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else SOURCE
    profile = align(json.loads(source.read_text()))
    TARGET.write_text(json.dumps(profile, indent=1, sort_keys=True) + "\n")
    print(f"{TARGET}: {len(profile['syscalls'])} rules from {source}")


if __name__ == "__main__":
    main()

"""What a container gets on its node, in real runc containers: Docker's seccomp profile and
capability set by default, and each security key doing what Docker does with it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shoal.agent.runtime import Runtime
from shoal.model.container import Resources, Security

from .conftest import CONFIG
from .test_compose_keys import output
from .test_runtime import cgroup_value, spec

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def run(runtime: Runtime, rootfs: Path, cid: str, script: str, **security: object) -> list[str]:
    return output(runtime, spec(cid, ["sh", "-c", script], security=Security(**security)), rootfs)


def status(lines: list[str], key: str) -> str:
    return next(line.split(":", 1)[1].strip() for line in lines if line.startswith(key + ":"))


def test_default_container_has_dockers_seccomp_and_caps(runtime: Runtime, rootfs: Path) -> None:
    script = "cat /proc/self/status; unshare -U -r true && echo userns-ok || echo userns-refused; "
    script += "unshare -m true 2>&1 && echo mountns-ok || echo mountns-refused"
    out = run(runtime, rootfs, "sec-default", script)
    assert status(out, "Seccomp") == "2"
    assert status(out, "NoNewPrivs") == "0"  # Docker's default: su/sudo keep working
    assert int(status(out, "CapEff"), 16) == 0xA80425FB  # Docker's 14 default capabilities
    assert "userns-refused" in out and "userns-ok" not in out
    assert "mountns-refused" in out
    assert any("Operation not permitted" in line for line in out)  # EPERM, as Docker's profile


def test_unconfined_loads_no_filter(runtime: Runtime, rootfs: Path) -> None:
    out = run(
        runtime, rootfs, "sec-unconf", "grep Seccomp: /proc/self/status", security_opt=["seccomp=unconfined"]
    )
    assert out == ["Seccomp:\t0"]


def test_cap_add_sys_admin_opens_the_conditional_rules(runtime: Runtime, rootfs: Path) -> None:
    script = "grep Seccomp: /proc/self/status; unshare -m true && echo mountns-ok"
    out = run(runtime, rootfs, "sec-admin", script, cap_add=["sys_admin"])
    assert out == ["Seccomp:\t2", "mountns-ok"]  # still filtered, but mount/unshare allowed


def test_cap_drop_all_and_no_new_privileges(runtime: Runtime, rootfs: Path) -> None:
    out = run(runtime, rootfs, "sec-drop", "cat /proc/self/status", cap_drop=["ALL"],
              security_opt=["no-new-privileges:true"])  # fmt: skip
    assert int(status(out, "CapEff"), 16) == 0 and int(status(out, "CapBnd"), 16) == 0
    assert status(out, "NoNewPrivs") == "1"


def test_privileged_has_every_cap_no_filter_and_devices(runtime: Runtime, rootfs: Path) -> None:
    script = "cat /proc/self/status; ls /dev; grep ' /sys ' /proc/mounts"
    out = run(runtime, rootfs, "sec-priv", script, privileged=True)
    assert status(out, "Seccomp") == "0"
    own = next(ln for ln in Path("/proc/self/status").read_text().splitlines() if ln.startswith("CapBnd:"))
    assert status(out, "CapEff") == own.split()[1]  # every capability the node (agent) has
    assert "full" in out  # a host device a default container lacks
    assert any(" rw," in line or " rw " in line for line in out if " /sys " in line)


def test_granted_device_appears(runtime: Runtime, rootfs: Path) -> None:
    # 10:259 is in none of runc's default device rules: only the grant lets it be opened.
    script = "stat -c '%t:%T' /dev/mydev; head -c 4 /dev/mydev >/dev/null && echo read-ok; "
    script += "echo 0 > /dev/mydev && echo write-ok || echo write-refused"
    out = run(runtime, rootfs, "sec-dev", script, devices=["/dev/cpu_dma_latency:/dev/mydev:r"])
    assert out[0] == "a:103" and "read-ok" in out and "write-refused" in out  # the rule's "r" only
    assert any("Operation not permitted" in line for line in out)
    script = "ls /dev/mydev 2>/dev/null || echo none; mknod /dev/m c 10 259; head -c 4 /dev/m || echo refused"
    out = run(runtime, rootfs, "sec-nodev", script)
    assert "none" in out and "refused" in out


def test_sysctl_applied_inside(runtime: Runtime, rootfs: Path) -> None:
    out = run(runtime, rootfs, "sec-sysctl", "cat /proc/sys/net/ipv4/ip_unprivileged_port_start",
              sysctls={"net.ipv4.ip_unprivileged_port_start": "123"})  # fmt: skip
    assert out == ["123"]


def test_pid_host_sees_the_nodes_pid_1(runtime: Runtime, rootfs: Path) -> None:
    host = Path("/proc/1/comm").read_text().strip()
    assert run(runtime, rootfs, "sec-pid", "cat /proc/1/comm", pid="host") == [host]
    assert run(runtime, rootfs, "sec-nopid", "cat /proc/1/comm") == ["cat"]


def test_default_pids_limit(runtime: Runtime, rootfs: Path) -> None:
    runtime.create_and_start(spec("sec-pids", ["sleep", "30"]), CONFIG, [rootfs])
    runtime.create_and_start(
        spec("sec-pids2", ["sleep", "30"], resources=Resources(pids=50)), CONFIG, [rootfs]
    )
    parent = runtime.config.cgroup_parent
    assert cgroup_value("pids", parent, "sec-pids", "pids.max") == "4096"  # the node's default
    assert cgroup_value("pids", parent, "sec-pids2", "pids.max") == "50"


def test_tmpfs_capped(runtime: Runtime, rootfs: Path) -> None:
    out = output(runtime, spec("sec-shm", ["sh", "-c", "grep /dev/shm /proc/mounts"]), rootfs)
    assert "size=262144k" in out[0]  # 256 MiB: the default cap, not half the node's memory
    assert CONFIG  # the image config every container here runs

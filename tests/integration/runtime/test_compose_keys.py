"""Compose keys as the node applies them, in real runc containers: each test fails if its key
were accepted and ignored (read_only, ulimits, shm_size, init, configs, tmpfs, stop_signal,
logging max-size/max-file)."""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path

import pytest

from shoal.agent.net.files import write_container_files
from shoal.agent.runtime import Runtime
from shoal.model.container import ContainerSpec, Mount, Ulimit

from .conftest import CONFIG
from .test_runtime import exited, spec, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def output(runtime: Runtime, s: ContainerSpec, rootfs: Path) -> list[str]:
    runtime.create_and_start(s, CONFIG, [rootfs])
    wait_for(lambda: exited(runtime, s.id))
    return [ln.text for ln in runtime.logs(s.id)]


def test_read_only_root_with_tmpfs_and_config_mount(runtime: Runtime, rootfs: Path) -> None:
    script = "echo x > /probe && echo root-rw || echo root-ro; echo t > /scratch/f && cat /scratch/f; "
    script += "cat /etc/app.conf; echo; echo y > /etc/app.conf || echo config-ro; ls -l /etc/app.conf"
    config = Mount(kind="config", source="app", target="/etc/app.conf", mode=0o440,
                   content_b64=base64.b64encode(b"listen=8080").decode())  # fmt: skip
    tmpfs = Mount(kind="tmpfs", target="/scratch", size_bytes=1 << 20)
    out = output(
        runtime, spec("shc-ro", ["sh", "-c", script], read_only=True, mounts=[config, tmpfs]), rootfs
    )
    assert "root-ro" in out and "root-rw" not in out
    assert "t" in out and "listen=8080" in out and "config-ro" in out
    assert any(line.startswith("-r--r-----") for line in out)  # the config's mode
    writable = output(runtime, spec("shc-rw", ["sh", "-c", "echo x > /probe && echo root-rw"]), rootfs)
    assert "root-rw" in writable


def test_ulimits_and_shm_size(runtime: Runtime, rootfs: Path) -> None:
    script = "ulimit -n; ulimit -Hn; ulimit -u; cat /proc/mounts"
    limits = [Ulimit(name="nofile", soft=2048, hard=4096), Ulimit(name="nproc", soft=77, hard=77)]
    s = spec("shc-lim", ["sh", "-c", script], shm_size_bytes=8 << 20, ulimits=limits)
    out = output(runtime, s, rootfs)
    assert out[:3] == ["2048", "4096", "77"]
    shm = next(line for line in out if " /dev/shm " in line)
    assert "size=8192k" in shm


def test_init_runs_as_pid_1_and_forwards_the_stop(runtime: Runtime, rootfs: Path) -> None:
    s = spec("shc-init", ["sh", "-c", "cat /proc/1/comm; sleep 60"], init=True)
    runtime.create_and_start(s, CONFIG, [rootfs])
    wait_for(lambda: any(ln.text for ln in runtime.logs("shc-init")))
    assert runtime.logs("shc-init")[0].text == "docker-init"
    t = time.monotonic()
    runtime.stop("shc-init", grace_s=5)  # tini forwards SIGTERM to the shell, which dies of it
    assert time.monotonic() - t < 4
    plain = output(runtime, spec("shc-noinit", ["sh", "-c", "cat /proc/1/comm; true"]), rootfs)
    assert plain == ["sh"]


def test_stop_signal_is_what_stop_sends(runtime: Runtime, rootfs: Path) -> None:
    script = "trap 'echo got-quit; exit 0' QUIT; trap '' TERM; while true; do sleep 0.1; done"
    runtime.create_and_start(spec("shc-quit", ["sh", "-c", script], stop_signal="SIGQUIT"), CONFIG, [rootfs])
    runtime.create_and_start(spec("shc-term", ["sh", "-c", script]), CONFIG, [rootfs])
    time.sleep(0.3)  # let the shells install their traps
    t = time.monotonic()
    runtime.stop("shc-quit", grace_s=5)
    assert time.monotonic() - t < 3
    wait_for(lambda: exited(runtime, "shc-quit"))
    assert runtime.get("shc-quit").exit_code == 0 and "got-quit" in [
        ln.text for ln in runtime.logs("shc-quit")
    ]
    runtime.stop("shc-term", grace_s=0.5)  # SIGTERM is ignored: killed after the grace period
    wait_for(lambda: exited(runtime, "shc-term"))
    assert runtime.get("shc-term").exit_code == 137


def test_logging_max_size_and_max_file_rotate_this_container(runtime: Runtime, rootfs: Path) -> None:
    script = "i=0; while [ $i -lt 300 ]; do echo line-$i-padding; i=$((i+1)); sleep 0.005; done; sleep 30"
    runtime.create_and_start(
        spec("shc-logopt", ["sh", "-c", script], log_max_bytes=1024, log_max_files=2), CONFIG, [rootfs]
    )
    log = runtime.log_file("shc-logopt")
    deadline = time.monotonic() + 20
    rotations = 0
    while time.monotonic() < deadline:
        rotations += sum(a.action == "rotate" for a in runtime.supervise())
        if any(ln.text == "line-299-padding" for ln in runtime.logs("shc-logopt", tail=1)):
            break
        time.sleep(0.1)
    wait_for(log.exists)
    assert rotations >= 2
    # the agent's default keeps 2 rotated files (fixture); max-file 2 keeps one besides the live one
    assert log.with_name(log.name + ".1").exists() and not log.with_name(log.name + ".2").exists()
    assert runtime.logs("shc-logopt")[-1].text == "line-299-padding"


def test_extra_hosts_and_dns_search_seen_inside(runtime: Runtime, rootfs: Path, workdir: Path) -> None:
    files = write_container_files(
        workdir / "net", "shc-hosts", "10.0.0.5", "10.0.0.1", "shoal.internal",
        extra_hosts={"db.example": "192.0.2.7"}, search=["corp.example"],
    )  # fmt: skip
    mounts = {"/etc/hosts": files.hosts, "/etc/resolv.conf": files.resolv_conf}
    s = spec(
        "shc-hosts", ["sh", "-c", "cat /etc/hosts /etc/resolv.conf"], extra_hosts={"db.example": "192.0.2.7"}
    )
    runtime.create_and_start(s, CONFIG, [rootfs], files=mounts)
    wait_for(lambda: exited(runtime, "shc-hosts"))
    out = [ln.text for ln in runtime.logs("shc-hosts")]
    assert "192.0.2.7\tdb.example" in out and "search shoal.internal corp.example" in out

"""Fixtures for the runtime's integration tests: a busybox rootfs and a Runtime under a temp dir.

Everything is named with the area prefix ``shc``; the finalizer deletes every container (runc and
conmon), unmounts every overlay and removes the cgroup parent, even when the test failed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.agent.runtime import Runtime, RuntimeConfig

BUSYBOX = "/bin/busybox"
APPLETS = ["sh", "echo", "sleep", "cat", "ls", "id", "env", "pwd", "true", "false"]
APPLETS += ["seq", "yes", "head", "ps", "hostname", "grep", "unshare", "stat", "mknod"]
CONFIG = {"config": {"Cmd": ["sh", "-c", "echo hello"], "Env": ["PATH=/bin", "FROM_IMAGE=1"]}}

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def build_rootfs(root: Path) -> Path:
    """A tiny image: busybox-static and its applets, a root and a named non-root user."""
    (root / "bin").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "tmp").mkdir(mode=0o1777)
    (root / "home" / "app").mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    (root / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"
    )
    (root / "etc" / "group").write_text("root:x:0:\napp:x:1000:\nstaff:x:50:app\n")
    os.chown(root / "home" / "app", 1000, 1000)
    return root


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="shc-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def rootfs(workdir: Path) -> Path:
    return build_rootfs(workdir / "image")


def runtime_config(base: Path) -> RuntimeConfig:
    return RuntimeConfig(
        state_dir=base / "state",
        bundles_dir=base / "bundles",
        logs_dir=base / "logs",
        volumes_dir=base / "volumes",
        cgroup_parent=f"/shc-{secrets.token_hex(4)}",
        log_max_bytes=4096,
        log_keep=2,
    )


@pytest.fixture
def runtime(workdir: Path) -> Iterator[Runtime]:
    rt = Runtime(runtime_config(workdir / "rt"))
    try:
        yield rt
    finally:
        cleanup(rt)


def cleanup(rt: Runtime) -> None:
    """Deletes every container of rt (also runc-only leftovers), unmounts, removes the cgroups."""
    for container in rt.list():
        with contextlib.suppress(Exception):
            rt.delete(container.id)
    for state in rt.runc.list():
        with contextlib.suppress(Exception):
            rt.runc.delete(state.id, force=True)
    for mount in Path("/proc/self/mounts").read_text().splitlines():
        target = mount.split()[1]
        if target.startswith(str(rt.config.bundles_dir)):
            subprocess.run(["umount", "-l", target], check=False)
    remove_cgroup(rt.config.cgroup_parent)


def remove_cgroup(parent: str) -> None:
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        path = hierarchy / parent.strip("/")
        if path.is_dir():
            for d in sorted(path.rglob("*"), key=lambda p: -len(p.parts)):
                if d.is_dir():
                    with contextlib.suppress(OSError):
                        d.rmdir()
            with contextlib.suppress(OSError):
                path.rmdir()

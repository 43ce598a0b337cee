"""`shoal sandbox down` from a fresh process removes everything, even after `up` was killed.

Runs first (file name) and builds its own sandboxes, before the session sandbox exists: the
sandbox's names (``sbx-*``, ``sbx-host``) are fixed, so two cannot coexist.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from pyroute2 import IPRoute, netns

from shoal.sandbox.procs import read_processes
from tests.e2e.helpers import SANDBOX


def sandbox_namespaces() -> list[str]:
    return [name for name in netns.listnetns() if name.startswith("sbx-")]


def host_link_exists() -> bool:
    with IPRoute() as ipr:
        return bool(ipr.link_lookup(ifname="sbx-host"))


def sandbox_pids() -> set[int]:
    """Pids in an sbx-* network namespace (what must be gone after `down`)."""
    inodes = {os.stat(f"/run/netns/{n}").st_ino for n in sandbox_namespaces()}
    return {p.pid for p in read_processes() if p.net in inodes}


def gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def down(directory: Path) -> subprocess.CompletedProcess[str]:
    argv = [*SANDBOX, "down", "--dir", str(directory)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def assert_nothing_left(pids: set[int]) -> None:
    assert sandbox_namespaces() == []
    assert not host_link_exists()
    assert [pid for pid in pids if not gone(pid)] == []


@pytest.fixture
def sandbox_dir(tmp_path: Path) -> Path:
    if sandbox_namespaces() or host_link_exists():
        pytest.fail("a sandbox already exists on this machine; run `shoal sandbox down` first")
    try:
        yield tmp_path / "sbx"
    finally:
        down(tmp_path / "sbx")


def start_up(directory: Path) -> subprocess.Popen[bytes]:
    argv = [*SANDBOX, "up", "--no-cluster", "--nodes", "3", "--nat", "1", "--dir", str(directory)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_down_after_up_was_killed_midway(sandbox_dir: Path) -> None:
    up = start_up(sandbox_dir)
    deadline = time.monotonic() + 60
    while not (sandbox_dir / "run" / "n2.ready").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    up.send_signal(signal.SIGKILL)
    up.wait()
    pids = sandbox_pids()
    assert pids, "the killed `up` left no process behind: nothing was tested"
    got = down(sandbox_dir)
    assert got.returncode == 0, got.stderr
    assert_nothing_left(pids)


def busybox_bundle(directory: Path) -> Path:
    """A runc bundle that sleeps, in its own cgroup path."""
    (directory / "rootfs" / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", directory / "rootfs" / "bin" / "busybox")
    subprocess.run(["runc", "spec", "--bundle", str(directory)], check=True)
    config = json.loads((directory / "config.json").read_text())
    config["process"].update(args=["/bin/busybox", "sleep", "600"], terminal=False)
    config["linux"]["cgroupsPath"] = "shoal-sbx-e2e/c1"
    (directory / "config.json").write_text(json.dumps(config))
    return directory


def run_container(directory: Path, bundle: Path) -> int:
    """Start a runc container inside node n1 (its own runc root under the node's /run)."""
    runc = [*SANDBOX, "exec", "--dir", str(directory), "n1", "--", "runc", "--root", "/run/sbx-runc"]
    subprocess.run(
        [*runc, "run", "-d", "--bundle", str(bundle), "sbx-c1"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    got = subprocess.run([*runc, "state", "sbx-c1"], check=True, capture_output=True, text=True)
    return int(json.loads(got.stdout)["pid"])


def test_down_without_the_record_sweeps_and_is_idempotent(sandbox_dir: Path, tmp_path: Path) -> None:
    assert start_up(sandbox_dir).wait(timeout=120) == 0
    container = run_container(sandbox_dir, busybox_bundle(tmp_path / "bundle"))
    pids = sandbox_pids() | {container}
    (sandbox_dir / "sandbox.json").unlink()
    assert down(sandbox_dir).returncode == 0
    assert_nothing_left(pids)
    assert not Path("/sys/fs/cgroup/pids/shoal-sbx-e2e").exists()
    again = down(sandbox_dir)
    assert again.returncode == 0, again.stderr


def test_up_again_in_the_same_dir_after_down(sandbox_dir: Path, tmp_path: Path) -> None:
    """A second `up` starts afresh: the first one's node state (an initialised server) is cleared."""
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    up = [*SANDBOX, "up", "--nodes", "1", "--nat", "0", "--dir", str(sandbox_dir)]
    for attempt in ("first", "second"):
        got = subprocess.run(up, capture_output=True, text=True, timeout=300, check=False, env=env)
        assert got.returncode == 0, f"{attempt} up: {got.stderr}"
        assert down(sandbox_dir).returncode == 0
    assert (sandbox_dir / "image-cache").is_dir()

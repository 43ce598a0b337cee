"""Several servers on the sandbox (`shoal sandbox up --servers 2`): kill -9 the leading server and
every replica keeps running untouched, the other server leads, and the next `shoal deploy`
succeeds within 15 s (agents and the CLI fail over to the other server's URL).

Runs before the session sandbox exists (file name) and builds its own: the sandbox's names are
fixed, so two cannot coexist.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyroute2 import netns

from shoal.sandbox import cluster as sbx_cluster
from shoal.sandbox import state
from tests.e2e.helpers import SANDBOX, Sandbox, wait_for

PROJECT = "ha"
COMPOSE = """
services:
  web:
    image: {registry}/example/hello:latest
    deploy: {{replicas: {replicas}}}
{more}"""
MORE = """  after:
    image: {registry}/example/hello:latest
"""


def _sandbox(
    directory: Path, env: dict[str, str], *args: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    argv = [*SANDBOX, *args, "--dir", str(directory)]
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def several(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    if any(name.startswith("sbx-") for name in netns.listnetns()):
        pytest.fail("a sandbox already exists on this machine; run `shoal sandbox down` first")
    directory = tmp_path_factory.mktemp("sbx-servers")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path_factory.mktemp("sbx-servers-config"))}
    try:
        up = _sandbox(directory, env, "up", "--nodes", "3", "--nat", "1", "--servers", "2")
        assert up.returncode == 0, f"sandbox up failed: {up.stderr.strip()}"
        status = _sandbox(directory, env, "status", "--output", "json")
        yield Sandbox(directory, json.loads(status.stdout), env)
    finally:
        down = _sandbox(directory, env, "down", timeout=120)
        assert down.returncode == 0, down.stderr


def _deploy(
    cluster: Sandbox, folder: Path, replicas: int, more: bool, *flags: str
) -> subprocess.CompletedProcess[str]:
    registry = cluster.status["registry"]
    text = COMPOSE.format(
        registry=registry, replicas=replicas, more=MORE.format(registry=registry) if more else ""
    )
    (folder / "compose.yaml").write_text(text)
    return cluster.shoal("deploy", "-f", str(folder / "compose.yaml"), "-p", PROJECT, *flags, timeout=180)


def _replicas(cluster: Sandbox, service: str) -> set[tuple[str, str, str]]:
    tasks = cluster.shoal_json("ps")
    return {(str(t["id"]), str(t["node"]), str(t["state"])) for t in tasks if t["service"] == service}


def _leader(cluster: Sandbox) -> dict[str, object]:
    rows = cluster.shoal_json("server", "ls")
    leading = [r for r in rows if r["leader"]]
    return leading[0] if len(leading) == 1 else {}


def test_killing_the_leading_server_keeps_replicas_and_deploys_go_on(
    several: Sandbox, tmp_path: Path
) -> None:
    first = _deploy(several, tmp_path, replicas=3, more=False)
    assert first.returncode == 0, first.stderr
    before = _replicas(several, "web")
    assert len(before) == 3 and {s for _, _, s in before} == {"running"}
    rows = several.shoal_json("server", "ls")
    assert sorted(r["node"] for r in rows) == ["n1", "n2"]
    wait_for(lambda: bool(_leader(several)), 15, "one server to lead")
    leader = _leader(several)
    record = state.load(several.dir)
    pid = sbx_cluster.process(record, str(leader["node"]), "server").pid
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), 10, "the leading server to die")
    again = _deploy(several, tmp_path, 3, True, "--detach")  # stored by the other server: it succeeded
    took = time.monotonic() - killed
    assert again.returncode == 0, again.stderr
    assert took < 15, f"the deploy after the leader's kill took {took:.1f}s"
    running = {"running"}
    wait_for(lambda: {s for _, _, s in _replicas(several, "after")} == running, 60, "the new service running")
    assert _replicas(several, "web") == before  # the same replicas, still running: untouched
    # the dead server's presence row is fresh for a few heartbeats more: the other one leads then
    wait_for(
        lambda: _leader(several).get("node") not in (None, leader["node"]), 30, "the other server to lead"
    )


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True

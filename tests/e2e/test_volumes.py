"""Issue 15: a named volume is a placement fact. A replica writes into its volume; its node is cut
off; the replica is NOT started elsewhere (ps shows it unplaced, naming the volume and its node,
and so do the events); when the node returns the replica runs there again and the file is still
there. `shoal volume ls` shows the binding; `volume rm` is refused while the service uses it.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shoal.sandbox import cluster as sbx_cluster
from shoal.sandbox import state
from tests.e2e.helpers import Sandbox, wait_for

PROJECT = "vols"
# n1 runs the server, which this test must not cut; the other three nodes may all take the
# replica, so only the volume keeps it from starting on one of them.
APP = """
services:
  store:
    image: {image}
    volumes: [data:/data]
    deploy:
      placement: {{constraints: ["node.hostname != n1"]}}
      restart_policy: {{condition: any, delay: 1s}}
volumes:
  data: {{}}
"""


def _replicas(cluster: Sandbox) -> list[dict[str, Any]]:
    return [t for t in cluster.shoal_json("ps") if t["project"] == PROJECT]


def _running_on(cluster: Sandbox) -> list[str]:
    return [str(t["node"]) for t in _replicas(cluster) if t["state"] == "running"]


def _exec(cluster: Sandbox, *cmd: str) -> str:
    got = cluster.shoal("service", "exec", "store", "-p", PROJECT, "--", *cmd)
    assert got.returncode == 0, got.stderr
    return got.stdout


def _cut(cluster: Sandbox, node: str) -> None:
    """As tests/e2e/test_failures.py: the agent killed and the node's link down."""
    os.kill(sbx_cluster.process(state.load(cluster.dir), node, "agent").pid, signal.SIGKILL)
    assert cluster.exec(node, "ip", "link", "set", "eth0", "down").returncode == 0


def _restore(cluster: Sandbox, node: str) -> None:
    cluster.exec(node, "ip", "link", "set", "eth0", "up")
    cluster.exec(node, "ip", "route", "replace", "default", "via", "198.51.100.1")
    sbx_cluster.restart_process(state.load(cluster.dir), node, "agent")


@pytest.fixture(scope="module")
def store(cluster: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    compose = Path(tmp_path_factory.mktemp("volumes")) / "compose.yaml"
    compose.write_text(APP.format(image=f"{cluster.status['registry']}/example/hello:latest"))
    got = cluster.shoal("deploy", "-f", str(compose), "--project", PROJECT, timeout=300)
    assert got.returncode == 0, got.stderr or got.stdout
    try:
        yield cluster
    finally:
        cluster.shoal("project", "rm", PROJECT, "--volumes")


def test_volume_data_survives_a_node_loss_and_is_never_copied_empty_elsewhere(store: Sandbox) -> None:
    wait_for(lambda: len(_running_on(store)) == 1, 120, "the replica running")
    [home] = _running_on(store)
    _exec(store, "sh", "-c", "echo kept > /data/mark")
    assert store.shoal_json("volume", "ls") == [
        {"project": PROJECT, "name": "data", "node": home, "size": None}
    ]
    waiting = f"volume data is on node {home} (node down)"
    _cut(store, home)
    try:
        wait_for(lambda: any(t["message"] == waiting for t in _replicas(store)), 90, "the replica unplaced")
        for _ in range(5):  # and it stays so: never started on another node
            [row] = _replicas(store)
            assert (row["state"], row["node"], row["message"]) == ("unplaced", None, waiting)
            time.sleep(1)
        said = [e["message"] for e in store.shoal_json("events", "--limit", "200")]
        assert f"{PROJECT}.store replica 1 is unplaced: {waiting}" in said
    finally:
        _restore(store, home)
    wait_for(lambda: _running_on(store) == [home], 120, f"the replica running on {home} again")
    assert _exec(store, "cat", "/data/mark").strip() == "kept"


def test_volume_rm_is_refused_while_a_service_uses_it(store: Sandbox) -> None:
    used = store.shoal("volume", "rm", "data", "-p", PROJECT)
    assert used.returncode != 0 and len(used.stderr.strip().splitlines()) == 1
    assert "used by service store" in used.stderr
    assert store.shoal("service", "rm", "store", "-p", PROJECT).returncode == 0
    gone = store.shoal("volume", "rm", "data", "-p", PROJECT)
    assert gone.returncode == 0, gone.stderr
    assert "its directory stays on node" in gone.stdout
    assert [v for v in store.shoal_json("volume", "ls") if v["project"] == PROJECT] == []

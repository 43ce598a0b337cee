"""Backup and restore on the sandbox: the server on n1 is backed up while it runs, stopped, its
data dir replaced by one restored from the archive (a fresh machine at the same address), and
started again. Every service and secret is there, every agent takes its state again, and no
container restarts (a file written into each replica before the backup is still there)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.sandbox import cluster as sbx_cluster
from shoal.sandbox import state
from tests.e2e.helpers import Sandbox, wait_for

PROJECT = "bak"
COMPOSE = """
services:
  keep:
    image: {registry}/example/hello:latest
    deploy: {{replicas: 2}}
"""
MARKER = "/tmp/written-before-the-backup"


def _replicas(cluster: Sandbox) -> set[tuple[str, str]]:
    tasks = cluster.shoal_json("ps")
    return {(str(t["id"]), str(t["state"])) for t in tasks if t["project"] == PROJECT}


def _exec(cluster: Sandbox, replica: int, *cmd: str) -> str:
    got = cluster.shoal("service", "exec", "keep", "-p", PROJECT, "--replica", str(replica), "--", *cmd)
    assert got.returncode == 0, got.stderr
    return got.stdout


def _stop_server(cluster: Sandbox) -> None:
    pid = sbx_cluster.process(state.load(cluster.dir), "n1", "server").pid
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), 30, "the server stopped")


@pytest.fixture(scope="module")
def deployed(cluster: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("backup")
    folder.chmod(0o755)
    (folder / "compose.yaml").write_text(COMPOSE.format(registry=cluster.status["registry"]))
    (folder / "phrase").write_text("a long enough passphrase\n")
    try:
        got = cluster.shoal("deploy", "-f", str(folder / "compose.yaml"), "-p", PROJECT, timeout=180)
        assert got.returncode == 0, got.stderr
        secret = cluster.shoal("secret", "create", "bakpw", "--from-file", str(folder / "phrase"))
        assert secret.returncode == 0, secret.stderr
        yield folder
    finally:
        cluster.shoal("project", "rm", PROJECT)
        cluster.shoal("secret", "rm", "bakpw")


def test_a_restored_server_keeps_everything_and_restarts_nothing(cluster: Sandbox, deployed: Path) -> None:
    for replica in (1, 2):
        _exec(cluster, replica, "touch", MARKER)
    before = _replicas(cluster)
    archive, data = deployed / "cluster.backup", str(sbx_cluster.SERVER_DATA)
    phrase = ["--passphrase-file", str(deployed / "phrase")]
    made = cluster.exec(
        "n1", *sbx_cluster.SHOAL, "server", "backup", "-o", str(archive), "--data-dir", data, *phrase
    )
    assert made.returncode == 0, made.stderr
    _stop_server(cluster)
    moved = cluster.exec("n1", "mv", data, f"{data}.before-restore")
    assert moved.returncode == 0, moved.stderr
    done = cluster.exec(
        "n1", *sbx_cluster.SHOAL, "server", "restore", str(archive), "--data-dir", data, *phrase, timeout=180
    )
    assert done.returncode == 0, done.stderr
    sbx_cluster.restart_process(state.load(cluster.dir), "n1", "server")
    wait_for(lambda: cluster.shoal("node", "ls").returncode == 0, 60, "the restored server answers")
    started = time.monotonic()
    wait_for(
        lambda: all(n["state"] == "ready" for n in cluster.shoal_json("node", "ls")),
        60,
        "every node ready again",
    )
    assert _replicas(cluster) == before
    assert "bakpw" in {s["name"] for s in cluster.shoal_json("secret", "ls")}
    time.sleep(max(0.0, 5 - (time.monotonic() - started)))  # the agents have taken their states
    for replica in (1, 2):
        assert _exec(cluster, replica, "ls", MARKER).strip() == MARKER
    assert _replicas(cluster) == before

"""Agents' versions against a real server: `node ls` shows them, `server upgrade-check` reads the
database and lists the agents an upgrade would leave more than one minor version behind."""

from __future__ import annotations

import json
import subprocess

from tests.integration.control.helpers import join, node_client
from tests.support.server_fixtures import Server, shoal


def _report(server: Server, name: str, version: str) -> None:
    with node_client(server, join(server, name)) as node:
        body = {"node": name, "containers": [], "agent_version": version}
        assert node.post(f"/api/v1/nodes/{name}/status", json=body).status_code == 200


def test_node_versions_and_the_upgrade_check(server: Server) -> None:
    _report(server, "old", "0.0.3")
    _report(server, "new", "0.2.0")
    with server.client() as admin:
        versions = {n["name"]: n["version"] for n in admin.get("/api/v1/nodes").json()}
    assert versions == {"old": "0.0.3", "new": "0.2.0"}
    argv = [
        "server",
        "upgrade-check",
        "--data-dir",
        str(server.data_dir),
        "--to",
        "0.2.0",
        "--output",
        "json",
    ]
    done = subprocess.run(shoal(*argv), capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["blockers"] == [
        "node old: agent 0.0.3 is more than one minor version behind server 0.2.0: upgrade it first"
    ]
    text = subprocess.run(
        shoal(*argv[:-4], "--to", "0.1.0"), capture_output=True, text=True, timeout=60, check=False
    )
    assert (
        text.stdout.strip() == "node new: agent 0.2.0 is newer than server 0.1.0: upgrade the servers first"
    )

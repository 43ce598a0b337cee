"""`shoal volume ls|rm` against a real server (PostgreSQL) and a scripted node: the table and its
JSON, `rm` refused in one line while a service mounts the volume, and `project rm --volumes`."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.integration.cli.conftest import ScriptedNode, Shoal

APP = """services:
  db:
    image: registry.shx:5000/db:1
    volumes: [data:/data]
volumes:
  data: {}
"""


def _volumes(shoal: Shoal) -> list[dict[str, object]]:
    got = shoal("volume", "ls", "-o", "json")
    assert got.exit_code == 0, got.stderr
    return list(json.loads(got.stdout))


def _deploy(shoal: Shoal, tmp_path: Path, project: str) -> None:
    path = tmp_path / "compose.yaml"
    path.write_text(APP)
    got = shoal("deploy", "-f", str(path), "-p", project, "--detach")
    assert got.exit_code == 0, got.stderr
    deadline = time.monotonic() + 15
    while not any(v["project"] == project for v in _volumes(shoal)):
        assert time.monotonic() < deadline, "the volume was never bound"
        time.sleep(0.1)


def test_volume_ls_rm_and_project_rm_volumes(shoal: Shoal, node: ScriptedNode, tmp_path: Path) -> None:
    _deploy(shoal, tmp_path, "alpha")
    _deploy(shoal, tmp_path, "beta")
    expected = [{"project": p, "name": "data", "node": node.name, "size": None} for p in ("alpha", "beta")]
    assert _volumes(shoal) == expected
    table = shoal("volume", "ls").stdout.splitlines()
    assert table[0].split() == ["PROJECT", "NAME", "NODE", "SIZE"]
    assert [line.split() for line in table[2:]] == [[p, "data", node.name, "-"] for p in ("alpha", "beta")]
    ambiguous = shoal("volume", "rm", "data")
    assert ambiguous.exit_code == 1
    assert (
        ambiguous.stderr.strip()
        == "error: volume data exists in projects alpha, beta: name one with -p/--project"
    )
    used = shoal("volume", "rm", "data", "-p", "alpha")
    assert used.exit_code == 1
    assert (
        used.stderr.strip()
        == "error: volume data is used by service db of project alpha: remove the service first"
    )
    assert shoal("service", "rm", "db", "-p", "alpha").exit_code == 0
    gone = shoal("volume", "rm", "data", "-p", "alpha")
    assert gone.exit_code == 0, gone.stderr
    assert gone.stdout.startswith(
        f"removed volume data of project alpha; its directory stays on node {node.name}"
    )
    removed = shoal("project", "rm", "beta", "--volumes")
    assert removed.exit_code == 0, removed.stderr
    assert _volumes(shoal) == []

"""An unpack bomb on the sandbox: an operator deploys an image whose layer of a few hundred bytes
unpacks to a 1 TiB sparse file. Its replica fails with the one-line refusal, visible in `shoal ps`
and in `shoal events`, and a service on the same node deployed beside it runs and answers. The
project is removed at the end, even on failure.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shoal.sandbox.images import ImageSpec, cached_build, push
from tests.e2e.helpers import SHOAL, Sandbox, wait_for
from tests.support.registry_fixtures import CACHE, crafted_tar, sparse_entry

PROJECT = "bombp"
COMPOSE = """services:
  bomb:
    image: {bomb}
    deploy: {{placement: {{constraints: ["node.hostname == n1"]}}}}
  fine:
    image: {fine}
    deploy: {{placement: {{constraints: ["node.hostname == n1"]}}}}
"""
REFUSAL = "refused: unpacks to more than 20 GiB (agent config unpack_max_bytes)"


@pytest.fixture(scope="module")
def operator(cluster: Sandbox) -> Iterator[str]:
    made = cluster.shoal_json("token", "create", "--role", "operator", "--name", "e2e-bomb")
    try:
        yield str(made["token"])
    finally:
        cluster.shoal("token", "rm", str(made["id"]))


@pytest.fixture(scope="module")
def bomb_image(cluster: Sandbox) -> str:
    spec = ImageSpec(raw_layers=(crafted_tar(sparse_entry("bomb", 1 << 40)),), cmd=("true",))
    ref = f"{cluster.status['registry']}/e2e/bomb:latest"
    push(cached_build(spec, CACHE), "latest", ref)
    return ref


def _rows(cluster: Sandbox) -> list[dict[str, Any]]:
    return [row for row in cluster.shoal_json("ps") if row.get("project") == PROJECT]


def _row(cluster: Sandbox, service: str) -> dict[str, Any]:
    return next((row for row in _rows(cluster) if row["service"] == service), {})


def test_a_bomb_fails_its_replica_and_the_node_keeps_working(
    cluster: Sandbox, operator: str, bomb_image: str, tmp_path: Path
) -> None:
    fine = f"{cluster.status['registry']}/example/hello:latest"
    (tmp_path / "compose.yaml").write_text(COMPOSE.format(bomb=bomb_image, fine=fine))
    env = {**cluster.env, "SHOAL_TOKEN": operator}
    argv = [*SHOAL, "deploy", "-f", str(tmp_path / "compose.yaml"), "-p", PROJECT, "--detach"]
    try:
        got = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120, env=env)
        assert got.returncode == 0, got.stderr
        wait_for(lambda: _row(cluster, "fine").get("state") == "running", 180, "the fine service running")
        wait_for(
            lambda: REFUSAL in str(_row(cluster, "bomb").get("message", "")), 180, "the bomb's refusal in ps"
        )
        bomb = _row(cluster, "bomb")
        assert bomb["state"] == "failed" and "\n" not in bomb["message"], bomb
        assert bomb["node"] == "n1" and _row(cluster, "fine")["node"] == "n1"
        events = cluster.shoal_json("events", "--limit", "500")
        assert any(REFUSAL in str(event.get("message", "")) for event in events), events[-20:]
        answer = cluster.shoal("service", "exec", "fine", "-p", PROJECT, "--", "true", timeout=30)
        assert answer.returncode == 0, answer.stderr
        assert _row(cluster, "fine")["state"] == "running"
    finally:
        cluster.shoal("project", "rm", PROJECT)

"""`depends_on: {db: {condition: service_healthy}}` on the sandbox: the app's replica is not
placed while db is unhealthy (the service says what it waits for) and starts once db is healthy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import Sandbox, wait_for

PROJECT = "deps"
COMPOSE = """
services:
  db:
    image: {registry}/example/hello:latest
    command: ["sh", "-c", "while [ ! -f /tmp/go ]; do sleep 1; done; exec /bin/serve"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/health"]
      interval: 1s
      timeout: 2s
      retries: 3
  app:
    image: {registry}/example/hello:latest
    depends_on:
      db: {{condition: service_healthy}}
"""


def _tasks(cluster: Sandbox, service: str) -> list[dict[str, Any]]:
    return [t for t in cluster.shoal_json("ps") if t["project"] == PROJECT and t["service"] == service]


@pytest.fixture(scope="module")
def deployed(cluster: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    path: Path = tmp_path_factory.mktemp("deps") / "compose.yaml"
    path.write_text(COMPOSE.format(registry=cluster.status["registry"]))
    try:
        got = cluster.shoal("deploy", "-f", str(path), "-p", PROJECT, "--detach", timeout=120)
        assert got.returncode == 0, got.stderr
        yield cluster
    finally:
        cluster.shoal("project", "rm", PROJECT)


def test_the_app_waits_for_db_to_be_healthy_then_starts(deployed: Sandbox) -> None:
    cluster = deployed
    wait_for(lambda: any(t["state"] == "running" for t in _tasks(cluster, "db")), 120, "db running")
    inspect = cluster.shoal_json("service", "inspect", "app", "-p", PROJECT)
    assert "waiting for db to be healthy" in str(inspect), inspect
    waiting = _tasks(cluster, "app")  # unplaced, with its reason, until db is healthy
    assert [(t["state"], t["message"]) for t in waiting] == [("unplaced", "waiting for db to be healthy")]
    went = cluster.shoal("service", "exec", "db", "-p", PROJECT, "--", "touch", "/tmp/go")
    assert went.returncode == 0, went.stderr
    wait_for(lambda: any(t["health"] == "healthy" for t in _tasks(cluster, "db")), 60, "db healthy")
    wait_for(lambda: any(t["state"] == "running" for t in _tasks(cluster, "app")), 60, "app running")

"""`shoal service rebalance` against a real server: the dry run's JSON, the moves printed as the
controller makes them, "already balanced", every service at once, and a one-line error."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.integration.cli.conftest import Shoal, store_service, wait_until
from tests.support.server_fixtures import FakeAgent, Server

NODES = ("shx-a", "shx-b")


@pytest.fixture
def agents(server: Server) -> Iterator[list[FakeAgent]]:
    made = []
    try:
        for name in NODES:
            agent = FakeAgent(server, name)
            agent.applies = True  # reports what it applied, so new replicas count as served
            made.append(agent.start())
        yield made
    finally:
        for agent in made:
            agent.stop()


def _spread(shoal: Shoal) -> Counter[str]:
    rows = json.loads(shoal("ps", "--service", "web", "-o", "json").stdout)
    return Counter(r["node"] for r in rows if r["state"] == "running")


def test_rebalance_dry_run_moves_and_already_balanced(
    shoal: Shoal, server: Server, agents: list[FakeAgent]
) -> None:
    store_service(server, "web", replicas=2)
    wait_until(lambda: _spread(shoal) == Counter(NODES), what="one replica per node")
    with server.client() as c:
        assert c.post("/api/v1/nodes/shx-b/drain").status_code == 200
        wait_until(lambda: _spread(shoal) == Counter({"shx-a": 2}), what="drained")
        assert c.post("/api/v1/nodes/shx-b/activate").status_code == 200
    planned = json.loads(shoal("service", "rebalance", "web", "--dry-run", "-o", "json").stdout)
    assert planned["service"] == "web" and planned["dry_run"] and planned["state"] == "planned"
    assert [(m["from"], m["to"]) for m in planned["moves"]] == [("shx-a", "shx-b")]
    moved = shoal("service", "rebalance", "web", "-p", "shx")
    replica = planned["moves"][0]["replica"]
    assert moved.exit_code == 0, moved.stderr
    assert moved.stdout.splitlines() == [
        f"web: moving replica {replica} from shx-a to shx-b",
        "service web rebalanced: 1 move(s)",
    ]
    wait_until(lambda: _spread(shoal) == Counter(NODES), what="one replica per node again")
    again = shoal("service", "rebalance", "web")
    assert again.exit_code == 0 and again.stdout.strip() == "service web is already balanced"
    every = json.loads(shoal("service", "rebalance", "-o", "json").stdout)
    assert [(r["service"], r["state"], r["moves"]) for r in every] == [("web", "done", [])]
    missing = shoal("service", "rebalance", "nope")
    assert missing.exit_code == 1 and len(missing.stderr.splitlines()) == 1 and "nope" in missing.stderr

"""Rebalancing on a real server and PostgreSQL, nodes played by fake agents.

A node drained and activated again is, to the scheduler, what a lost node coming back is: its
replica moved away and nothing moves it back by itself. `POST /services/web/rebalance` moves it
back (start-first: never fewer than three replicas running); a service deployed with
`rebalance: auto` is moved back by the controller alone after the settle delay.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.integration.control.helpers import put_services, tasks, wait_for, web_spec
from tests.support.server_fixtures import FakeAgent, Server, ServerFactory

NODES = ("r0", "r1", "r2")


@pytest.fixture
def quick(server_factory: ServerFactory) -> Server:
    return server_factory("--grace", "3", "--rebalance-settle", "1")


@pytest.fixture
def agents(quick: Server) -> Iterator[list[FakeAgent]]:
    made = []
    try:
        for name in NODES:
            agent = FakeAgent(quick, name)
            agent.applies = True
            made.append(agent.start())
        yield made
    finally:
        for agent in made:
            agent.stop()


def _spread(server: Server, service: str = "web") -> Counter[str]:
    return Counter(t["node"] for t in tasks(server, service=service) if t["desired"] == "run")


def _serving(server: Server, service: str = "web") -> list[dict[str, Any]]:
    run = [t for t in tasks(server, service=service) if t["desired"] == "run"]
    return [t for t in run if t["state"] == "running"]


def _pile_up(server: Server, service: str = "web", drained: Callable[[], None] = lambda: None) -> None:
    """One replica per node, then r2 drained (its replica moves), `drained()`, r2 activated again."""
    wait_for(lambda: _spread(server, service) == Counter(NODES), what="one replica per node")
    wait_for(lambda: len(_serving(server, service)) == 3, what="three replicas running")
    with server.client() as c:
        assert c.post("/api/v1/nodes/r2/drain").status_code == 200
        wait_for(
            lambda: _spread(server, service)["r2"] == 0 and len(_serving(server, service)) == 3,
            what="r2 drained",
        )
        drained()
        assert c.post("/api/v1/nodes/r2/activate").status_code == 200


def test_rebalance_moves_a_replica_back_start_first(quick: Server, agents: list[FakeAgent]) -> None:
    put_services(quick, "p", {"web": web_spec("web", replicas=3)})
    _pile_up(quick)
    with quick.client() as c:
        planned = c.post("/api/v1/services/web/rebalance", json={"dry_run": True}).json()
        assert planned["state"] == "planned" and len(planned["moves"]) == 1
        assert planned["moves"][0]["to"] == "r2"
        assert sorted(_spread(quick).values()) == [1, 2]  # a dry run moves nothing
        asked = c.post("/api/v1/services/web/rebalance", json={}).json()
        assert asked["state"] == "running" and asked["moves"] == planned["moves"]
        fewest = 3

        def done() -> bool:
            nonlocal fewest
            fewest = min(fewest, len(_serving(quick)))
            return c.get("/api/v1/services/web/rebalance").json()["state"] != "running"

        wait_for(done, timeout=30, what="rebalance done")
        progress = c.get("/api/v1/services/web/rebalance").json()
        assert progress["state"] == "done" and progress["moves"] == planned["moves"]
        assert fewest >= 3
        again = c.post("/api/v1/services/web/rebalance", json={}).json()
        assert again["state"] == "done" and again["moves"] == [] and again["message"] == "already balanced"
        kinds = [e["kind"] for e in c.get("/api/v1/events").json()]
    wait_for(lambda: _spread(quick) == Counter(NODES), what="one replica per node again")
    assert "rebalance.move" in kinds and "rebalance.done" in kinds


def test_failed_move_keeps_the_old_replica(quick: Server, agents: list[FakeAgent]) -> None:
    put_services(quick, "p", {"web": web_spec("web", replicas=3, template={"image": "web:bad"})})
    _pile_up(quick, drained=lambda: agents[2].failing.add("web:bad"))  # r2 cannot run it any more
    with quick.client() as c:
        assert c.post("/api/v1/services/web/rebalance", json={}).json()["state"] == "running"
        wait_for(
            lambda: c.get("/api/v1/services/web/rebalance").json()["state"] != "running",
            timeout=30,
            what="rebalance ended",
        )
        progress = c.get("/api/v1/services/web/rebalance").json()
    assert progress["state"] == "failed" and "failed on r2" in progress["message"]
    wait_for(lambda: _spread(quick)["r2"] == 0 and len(_serving(quick)) == 3, what="the old replica kept")


def test_auto_mode_rebalances_by_itself(quick: Server, agents: list[FakeAgent]) -> None:
    put_services(quick, "p", {"web": web_spec("web", replicas=3, rebalance="auto")})
    _pile_up(quick)
    wait_for(lambda: _spread(quick) == Counter(NODES), timeout=30, what="spread evenly again by itself")
    with quick.client() as c:
        kinds = [e["kind"] for e in c.get("/api/v1/events").json()]
    assert "rebalance.move" in kinds and "rebalance.requested" not in kinds

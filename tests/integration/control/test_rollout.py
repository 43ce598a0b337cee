"""Rolling updates gated on reported health; automatic rollback when the new revision fails."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.control.helpers import put_services, tasks, wait_for, web_spec
from tests.support.server_fixtures import FakeAgent, Server


@pytest.fixture
def agents(server: Server) -> Iterator[list[FakeAgent]]:
    made = [FakeAgent(server, f"r{i}").start() for i in range(2)]
    try:
        yield made
    finally:
        for agent in made:
            agent.stop()


def _service(server: Server, name: str) -> dict:
    with server.client() as c:
        return dict(c.get(f"/api/v1/services/{name}").json())


def _spec(image: str, action: str = "pause") -> dict:
    update = {"parallelism": 1, "order": "start-first", "failure_action": action}
    return web_spec("web", replicas=3, template={"image": image}, update=update)


def test_rolling_update_then_rollback_on_failure(server: Server, agents: list[FakeAgent]) -> None:
    put_services(server, "p", {"web": _spec("web:1")})
    wait_for(lambda: _service(server, "web")["rollout"]["state"] == "completed", what="first rollout")
    put_services(server, "p", {"web": _spec("web:2", action="rollback")})
    most = 0

    def done() -> bool:
        nonlocal most
        run = [t for t in tasks(server, service="web") if t["desired"] == "run"]
        most = max(most, len(run))
        return _service(server, "web")["rollout"]["state"] == "completed"

    wait_for(done, what="second rollout")
    run = [t for t in tasks(server, service="web") if t["desired"] == "run"]
    assert {t["image"] for t in run} == {"web:2"} and len(run) == 3
    assert most <= 4  # start-first with parallelism 1: one extra replica at a time
    for agent in agents:
        agent.failing.add("web:3")
    put_services(server, "p", {"web": _spec("web:3", action="rollback")})
    wait_for(lambda: _service(server, "web")["revision"] == 2, what="automatic rollback")
    wait_for(lambda: _service(server, "web")["rollout"]["state"] == "completed", what="rollback to settle")
    revs = [t["revision"] for t in tasks(server, service="web") if t["desired"] == "run"]
    assert revs == [2, 2, 2]
    with server.client() as c:
        kinds = [e["kind"] for e in c.get("/api/v1/events").json()]
    assert "rollout.rolling-back" in kinds

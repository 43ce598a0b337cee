"""'Deployed' means 'served', against a real server and PostgreSQL: agents' applied versions are
stored, replicas are published at a cluster version whose node states list them, a service's
serving block names the nodes up that lag, and `shoal deploy` returns only once every node serves
(or names the ones that do not after its bounded wait)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from shoal.cli import deploy as deploy_cli
from shoal.cli.main import cli
from shoal.control.store.db import connect
from tests.integration.control.helpers import put_services, wait_for, web_spec
from tests.support.server_fixtures import FakeAgent, Server


@pytest.fixture
def agents(server: Server) -> Iterator[list[FakeAgent]]:
    made = [FakeAgent(server, f"s{i}") for i in range(3)]
    for agent in made:
        agent.applies = True
        agent.start()
    try:
        yield made
    finally:
        for agent in made:
            agent.stop()


def _serving(server: Server, name: str) -> dict[str, Any]:
    with server.client() as c:
        return dict(c.get(f"/api/v1/services/{name}").json()["serving"])


def _applied(server: Server) -> dict[str, tuple[int | None, int | None]]:
    with connect(server.dsn) as conn:
        rows = conn.execute("SELECT name, applied_version, applied_cluster_version FROM nodes").fetchall()
    return {r["name"]: (r["applied_version"], r["applied_cluster_version"]) for r in rows}


def _served(server: Server, name: str, replicas: int) -> dict[str, Any] | None:
    serving = _serving(server, name)
    done = serving["published"] == replicas and not serving["lagging"]
    return serving if done else None


def test_applied_versions_are_stored_and_a_published_replica_is_in_every_later_state(
    server: Server, agents: list[FakeAgent]
) -> None:
    put_services(server, "p", {"web": web_spec("web", replicas=4)})
    serving = wait_for(lambda: _served(server, "p.web", 4), what="4 replicas served")
    applied = wait_for(lambda: (a := _applied(server)) and all(v[1] for v in a.values()) and a)
    assert all(cluster >= serving["cluster_version"] for _, cluster in applied.values())
    with server.client() as c:
        shown = {n["name"]: n["applied_version"] for n in c.get("/api/v1/nodes").json()}
    assert all(shown[name] >= version for name, (version, _) in applied.items())  # type: ignore[operator]
    for agent in agents:
        version, _ = applied[agent.name]
        assert any(s["version"] == version for s in agent.states)  # what it said it applied
        for state in (s for s in agent.states if int(s["cluster_version"]) >= serving["cluster_version"]):
            names = {r["name"]: r["addresses"] for r in state["dns"]}  # type: ignore[attr-defined]
            assert len(names["web.p.shoal.internal"]) == 4, state


def test_a_node_that_does_not_apply_lags_until_it_is_down(server: Server, agents: list[FakeAgent]) -> None:
    put_services(server, "p", {"web": web_spec("web", replicas=2)})
    wait_for(lambda: _served(server, "p.web", 2), what="2 replicas served")
    slow = agents[2]
    slow.held = _applied(server)[slow.name]  # it goes on reporting, but applies nothing new
    put_services(server, "p", {"web": web_spec("web", replicas=4)})
    serving = wait_for(
        lambda: (s := _serving(server, "p.web"))["published"] == 4 and len(s["lagging"]) < 2 and s
    )
    assert serving["lagging"] == [slow.name]  # the others applied it; the slow one still lags
    slow.stop()  # cut off: once it is declared down (grace 3 s) nothing waits for it
    wait_for(lambda: _served(server, "p.web", 4), what="the down node no longer waited for")


def test_a_node_that_reports_no_applied_version_is_not_waited_for(server: Server) -> None:
    old = FakeAgent(server, "old").start()  # an agent from before applied versions
    try:
        put_services(server, "p", {"web": web_spec("web", replicas=1)})
        wait_for(lambda: _served(server, "p.web", 1), what="served without the old agent's word")
        assert _applied(server)["old"] == (None, None)
    finally:
        old.stop()


COMPOSE = """services:
  web:
    image: registry.shx:5000/web:1
    deploy:
      replicas: 3
"""


def _deploy(server: Server, path: Path) -> Any:
    env = {"SHOAL_SERVER": server.url, "SHOAL_TOKEN": server.admin_token, "SHOAL_CACERT": server.ca}
    argv = ["deploy", "-f", str(path), "-p", "q", "--output", "json", "--timeout", "60"]
    return CliRunner().invoke(cli, argv, env=env, catch_exceptions=False)


def test_deploy_returns_once_every_node_serves(
    server: Server, agents: list[FakeAgent], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    done = _deploy(server, tmp_path / "compose.yaml")
    assert done.exit_code == 0, done.output
    answer = json.loads(done.stdout)
    assert answer["healthy"] and answer["served"] and answer["lagging"] == []
    assert answer["project"] == "q" and [s["name"] for s in answer["services"]] == ["web"]
    serving = _serving(server, "q.web")  # at the moment it returned, every node had applied it
    assert serving["published"] == 3
    assert all(cluster >= serving["cluster_version"] for _, cluster in _applied(server).values())


def test_deploy_names_a_node_that_does_not_serve_and_returns(
    server: Server, agents: list[FakeAgent], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(deploy_cli, "SERVE_WAIT_S", 1.0)
    wait_for(lambda: all(v[1] is not None for v in _applied(server).values()), what="every node applied")
    agents[0].held = _applied(server)[agents[0].name]
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    done = _deploy(server, tmp_path / "compose.yaml")
    assert done.exit_code == 0, done.output
    answer = json.loads(done.stdout)
    assert answer["healthy"] and not answer["served"] and answer["lagging"] == [agents[0].name]
    assert f"waiting for {agents[0].name} to serve them" in done.stderr

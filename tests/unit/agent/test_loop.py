"""The loop's pure parts: back-off, when a report is news, which states are taken and saved."""

from __future__ import annotations

from pathlib import Path

from shoal.agent.config import AgentConfig, NodeRecord
from shoal.agent.loop import Agent, Backoff, _changed
from shoal.agent.statefile import load_state
from shoal.model.state import NodeState
from shoal.model.status import ContainerStatus, NodeStatus, PeerStatus


def test_backoff_doubles_to_a_cap_and_resets() -> None:
    backoff = Backoff(first_s=0.5, max_s=3.0)
    assert [backoff.failed() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.ok()
    assert backoff.failed() == 0.5


def test_only_container_changes_are_news() -> None:
    base = NodeStatus(node="n1", time=1.0, containers=[ContainerStatus(id="a", state="running")])
    later = base.model_copy(update={"time": 2.0, "peers": [PeerStatus(public_key="k", rx_bytes=5)]})
    assert not _changed(base, later)
    sick = base.model_copy(
        update={"containers": [ContainerStatus(id="a", state="running", health="unhealthy")]}
    )
    assert _changed(base, sick)


def test_accepts_newer_states_only_and_saves_them(tmp_path: Path) -> None:
    node = NodeRecord("https://s:1", "n1", "c", "s", "10.210.1.0/24", "10.210.1.1", "10.210.0.0/16")
    agent = Agent(config=AgentConfig(data_dir=tmp_path), node=node, client=None, containers=None)  # type: ignore[arg-type]
    first = NodeState(version=3, node="n1", subnet="10.210.1.0/24")
    assert agent.accept(first)
    assert load_state(tmp_path / "state.json") == first
    assert not agent.accept(first.model_copy(update={"version": 2}))
    assert agent.accept(first.model_copy(update={"version": 4}))
    assert agent.state is not None and agent.state.version == 4

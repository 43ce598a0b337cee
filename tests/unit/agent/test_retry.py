"""The agent's retries: jittered back-off, and fencing on a lasting refusal (never on an outage)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from shoal.agent.config import AgentConfig, NodeRecord
from shoal.agent.loop import Agent
from shoal.agent.retry import Backoff, Fence, refusal
from shoal.agent.statefile import load_state
from shoal.client.errors import ApiError, ForbiddenError, NotFoundError, UnauthorizedError, Unreachable
from shoal.model.container import ContainerSpec
from shoal.model.state import NodeState


def steps(backoff: Backoff, count: int) -> list[float]:
    out = []
    for _ in range(count):
        backoff.failed()
        out.append(backoff.current)
    return out


def test_backoff_steps_double_to_a_cap_and_reset() -> None:
    backoff = Backoff(first_s=0.5, max_s=3.0)
    assert steps(backoff, 5) == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.ok()
    assert backoff.current == backoff.delay == 0.0
    assert steps(backoff, 1) == [0.5]


def test_backoff_delays_vary_and_stay_within_the_upper_half_of_each_step() -> None:
    delays: dict[float, set[float]] = {}
    for seed in range(50):
        backoff = Backoff(first_s=1.0, max_s=5.0, rng=random.Random(seed))
        for _ in range(5):
            delay = backoff.failed()
            assert backoff.current / 2 <= delay <= backoff.current <= 5.0
            assert delay == backoff.delay
            delays.setdefault(backoff.current, set()).add(round(delay, 6))
    assert all(len(drawn) > 40 for drawn in delays.values()), "agents cut off together retry in step"
    assert min(delays[5.0]) < 3.0 < max(delays[5.0])


@pytest.mark.parametrize(
    ("exc", "refused"),
    [
        (UnauthorizedError(401, "unknown token"), True),
        (NotFoundError(404, "node n3 not found"), True),
        (ForbiddenError(403, "only node n2's own credential may do this"), False),
        (ApiError(503, "the database is unavailable"), False),
        (ApiError(502, "bad gateway"), False),
        (Unreachable("connection refused"), False),
        (TimeoutError("timed out"), False),
    ],
)
def test_only_401_and_404_are_refusals(exc: Exception, refused: bool) -> None:
    assert refusal(exc) == refused


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_fence_is_due_once_after_the_grace_and_an_accepted_call_resets_it() -> None:
    clock = Clock()
    fence = Fence(5.0, clock)
    assert fence.due_in() == float("inf")
    assert not fence.refused()
    clock.now = 104.9
    assert not fence.refused()
    assert fence.due_in() == pytest.approx(0.1)
    clock.now = 105.0
    assert fence.refused()
    assert fence.due_in() == float("inf")
    clock.now = 200.0
    assert not fence.refused(), "fenced once"
    fence.accepted()
    assert not fence.refused()
    clock.now = 206.0
    assert fence.refused()


def agent_with_containers(tmp_path: Path) -> Agent:
    node = NodeRecord("https://s:1", "n1", "c", "s", "10.210.1.0/24", "10.210.1.1", "10.210.0.0/16")
    config = AgentConfig(data_dir=tmp_path, run_dir=tmp_path / "run", fence_after_s=5.0)
    agent = Agent(config=config, node=node, client=None, containers=None)  # type: ignore[arg-type]
    spec = ContainerSpec(id="web-1", service="web", replica=1, image="busybox")
    agent.accept(NodeState(version=7, node="n1", subnet="10.210.1.0/24", containers=[spec]))
    return agent


def test_a_lasting_refusal_fences_the_node_and_the_saved_state_keeps_it_fenced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    agent = agent_with_containers(tmp_path)
    clock = Clock()
    agent.fence = Fence(5.0, clock)
    refused = UnauthorizedError(401, "unknown token")
    agent._refused(refused)
    assert agent.state is not None and len(agent.state.containers) == 1
    clock.now += 6.0
    with caplog.at_level("ERROR"):
        agent._refused(refused)
    assert agent.state is not None and agent.state.containers == []
    saved = load_state(agent.config.state_file)
    assert saved is not None and saved.containers == []
    fenced = [r.getMessage() for r in caplog.records if "fenced" in r.getMessage()]
    assert len(fenced) == 1 and "stopping its 1 container(s)" in fenced[0]
    # the node back in the cluster: the server's next state is taken, whatever its version
    assert agent.accept(NodeState(version=1, node="n1", subnet="10.210.1.0/24"))


@pytest.mark.parametrize(
    "outage", [Unreachable("connection refused"), ApiError(503, "database unavailable"), TimeoutError()]
)
def test_an_outage_never_fences(tmp_path: Path, outage: Exception) -> None:
    agent = agent_with_containers(tmp_path)
    clock = Clock()
    agent.fence = Fence(5.0, clock)
    for _ in range(20):
        agent._refused(outage)
        clock.now += 10.0
    assert agent.state is not None and len(agent.state.containers) == 1

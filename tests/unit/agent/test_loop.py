"""The loop's pure parts: back-off, when a report is news, which states are taken and saved."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from shoal.agent.config import AgentConfig, NodeRecord
from shoal.agent.health import HealthMonitor
from shoal.agent.loop import Agent, _changed
from shoal.agent.reconcilers.containers import ContainerPlan, Seen
from shoal.agent.retry import Backoff
from shoal.agent.statefile import load_state
from shoal.model.container import ContainerSpec, HealthCheck
from shoal.model.state import NodeState
from shoal.model.status import ContainerStatus, NodeStatus, PeerStatus


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


class Versions:
    """A server whose state goes up to version 3, then stays there."""

    def get_node_state(self, name: str, since: int, wait: float) -> NodeState:
        time.sleep(0.01)
        return NodeState(version=min(max(since, 0) + 1, 3), node="n1", subnet="10.210.1.0/24")


def test_a_state_that_cannot_be_saved_is_served_and_saved_later(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Disk full (here: a directory where the file goes): the poller logs one line, keeps the
    new states coming and saves once it can (it used to end for good)."""
    node = NodeRecord("https://s:1", "n1", "c", "s", "10.210.1.0/24", "10.210.1.1", "10.210.0.0/16")
    agent = Agent(config=AgentConfig(data_dir=tmp_path), node=node, client=Versions(), containers=None)  # type: ignore[arg-type]
    blocker = tmp_path / "state.json"
    blocker.mkdir(parents=True)
    poller = threading.Thread(target=agent._poll_forever, daemon=True)
    poller.start()
    try:
        deadline = time.monotonic() + 5
        while (agent.state is None or agent.state.version < 3) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert agent.state is not None and agent.state.version == 3
        time.sleep(0.1)
        assert blocker.is_dir()
        assert caplog.text.count("saving the node state failed") == 1
        blocker.rmdir()
        while load_state(blocker) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        saved = load_state(blocker)
        assert saved is not None and saved.version == 3
        assert poller.is_alive()
    finally:
        agent.stop()
        poller.join(timeout=5)


class SlowServer:
    """Records how many posts are in flight at once and the order reports were made in."""

    def __init__(self) -> None:
        self.in_flight = self.most = 0
        self.times: list[float] = []

    def post_status(self, name: str, status: NodeStatus) -> None:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        time.sleep(0.01)
        self.times.append(status.time)
        self.in_flight -= 1


def test_reports_from_two_threads_go_one_at_a_time_in_order(tmp_path: Path) -> None:
    node = NodeRecord("https://s:1", "n1", "c", "s", "10.210.1.0/24", "10.210.1.1", "10.210.0.0/16")
    server = SlowServer()
    agent = Agent(config=AgentConfig(data_dir=tmp_path), node=node, client=server, containers=None)  # type: ignore[arg-type]
    agent.status = NodeStatus(node="n1")

    def post_five() -> None:
        for _ in range(5):
            agent._report_once(Backoff())

    posters = [threading.Thread(target=post_five) for _ in "ab"]
    for thread in posters:
        thread.start()
    for thread in posters:
        thread.join()
    assert server.most == 1 and len(server.times) == 10
    assert server.times == sorted(server.times)


class Observed:
    def __init__(self, seen: dict[str, Seen]) -> None:
        self.seen = seen

    def observe(self) -> dict[str, Seen]:
        return self.seen

    def supervise(self, force: bool = True, boot: bool = False) -> list[str]:
        return []


class Reconciler:
    def __init__(self, seen: dict[str, Seen]) -> None:
        self.runtime, self.asked = Observed(seen), []  # type: ignore[var-annotated]

    def reconcile(self, state: NodeState, unhealthy: list[str], observed: object = None) -> ContainerPlan:
        self.asked.append(unhealthy)
        return ContainerPlan((), (), ())


def test_a_health_verdict_on_a_process_its_policy_replaced_restarts_nothing(tmp_path: Path) -> None:
    """Killed, the old process failed its check; the policy started a new one: that one is fine."""
    node = NodeRecord("https://s:1", "n1", "c", "s", "10.210.1.0/24", "10.210.1.1", "10.210.0.0/16")
    check = HealthCheck(test=["CMD", "true"])
    spec = ContainerSpec(id="w-1-1", service="w", replica=1, generation=1, image="i", healthcheck=check)
    state = NodeState(version=1, node="n1", subnet="10.210.1.0/24", containers=[spec])
    health = HealthMonitor(lambda cid, argv, t: (0, ""), lambda cid, status: None)
    for started_at, expected in ((200.0, []), (100.0, [spec.id])):  # restarted by its policy; not
        health.forget(spec.id)
        health.track(spec.id, check, started_at=100.0)
        sick = dataclasses.replace(health._tracked[spec.id].state, status="unhealthy")
        health._tracked[spec.id].state = sick  # the verdict on the killed process
        reconciler = Reconciler({spec.id: Seen(spec.id, "running", pid=7, started_at=started_at)})
        agent = Agent(AgentConfig(data_dir=tmp_path), node, None, reconciler, health=health)  # type: ignore[arg-type]
        agent._containers(state)
        assert reconciler.asked == [expected]


class Recorder:
    def __init__(self) -> None:
        self.posted: list[str] = []

    def post_status(self, name: str, status: NodeStatus) -> None:
        self.posted.append(status.containers[0].state)


def _reporting_agent(tmp_path: Path) -> tuple[Agent, Recorder]:
    node = NodeRecord("https://s:1", "n1", "c", "s", "10.210.1.0/24", "10.210.1.1", "10.210.0.0/16")
    server = Recorder()
    config = AgentConfig(data_dir=tmp_path, heartbeat_s=30)
    agent = Agent(config=config, node=node, client=server, containers=None)  # type: ignore[arg-type]
    agent._spawn("reporter", agent._report_forever)
    return agent, server


def _status(state: str) -> NodeStatus:
    return NodeStatus(node="n1", containers=[ContainerStatus(id="a", state=state)])


def _progress_during_a_pass(agent: Agent) -> None:
    agent._status_current.clear()
    agent.status = _status("pulling")
    agent._progress_news.set()
    agent._report_now.set()


def test_a_start_that_ends_soon_is_reported_once_as_its_end(tmp_path: Path) -> None:
    agent, server = _reporting_agent(tmp_path)
    _progress_during_a_pass(agent)
    time.sleep(0.05)
    agent.status = _status("running")
    agent._report_now.set()
    agent._status_current.set()
    time.sleep(0.1)
    agent.stop()
    assert server.posted == ["running"]


def test_a_long_start_still_reports_its_progress(tmp_path: Path) -> None:
    agent, server = _reporting_agent(tmp_path)
    _progress_during_a_pass(agent)
    time.sleep(0.1)
    assert server.posted == []  # within PROGRESS_DELAY_S the pass may yet end
    time.sleep(0.3)
    agent.stop()
    assert server.posted == ["pulling"]


class Starting(Reconciler):
    """Starts container "a": a progress report as the start begins, then it runs."""

    progress: Callable[[], None] | None = None
    outcomes: dict[str, object] = {}
    restarts: dict[str, int] = {}

    def reconcile(self, state: NodeState, unhealthy: list[str], observed: object = None) -> ContainerPlan:
        assert self.progress is not None
        self.progress()
        self.runtime.seen["a"] = Seen("a", "running", pid=7)
        return super().reconcile(state, unhealthy, observed)


def test_a_start_is_reported_before_the_late_steps_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Firewall and DNS come before the report (a replica is running once reachable by name);
    the mesh, the edge and the agent's endpoints after it, and the report does not wait for them
    (a progress report is held until its pass has refreshed the status, here for as long as the
    late step would wait for the report)."""
    monkeypatch.setattr("shoal.agent.loop.PROGRESS_DELAY_S", 30.0)
    node = NodeRecord("https://s:1", "n1", "c", "s", "10.210.1.0/24", "10.210.1.1", "10.210.0.0/16")
    spec = ContainerSpec(id="a", service="w", replica=1, generation=1, image="i")
    state = NodeState(version=1, node="n1", subnet="10.210.1.0/24", containers=[spec])
    server, order = Recorder(), []
    agent = Agent(AgentConfig(data_dir=tmp_path, heartbeat_s=30), node, server, Starting({}))  # type: ignore[arg-type]

    def late(_: NodeState) -> None:
        deadline = time.monotonic() + 3
        while not server.posted and time.monotonic() < deadline:
            time.sleep(0.005)
        order.append(f"late, posted {server.posted}")

    agent.steps = [("dns", lambda s: order.append(f"dns, posted {server.posted}"))]
    agent.late_steps = [("wireguard", late)]
    agent._spawn("reporter", agent._report_forever)
    agent.reconcile_once(state)
    agent.stop()
    assert order == ["dns, posted []", "late, posted ['running']"]
    assert server.posted == ["running"]


def _applying_agent(tmp_path: Path, fail: str = "") -> tuple[Agent, NodeState]:
    node = NodeRecord("https://s:1", "n1", "c", "s", "10.210.1.0/24", "10.210.1.1", "10.210.0.0/16")
    state = NodeState(version=5, cluster_version=9, node="n1", subnet="10.210.1.0/24")
    agent = Agent(AgentConfig(data_dir=tmp_path, heartbeat_s=30), node, Recorder(), Starting({}))  # type: ignore[arg-type]
    agent.containers.progress = lambda: None

    def step(name: str) -> Callable[[NodeState], None]:
        def run(_: NodeState) -> None:
            if name == fail:
                raise RuntimeError(f"{name} broke")

        return run

    agent.steps = [("dns", step("dns"))]
    agent.late_steps = [("ingress", step("ingress"))]
    return agent, state


def test_a_pass_whose_every_step_succeeded_reports_its_state_as_applied(tmp_path: Path) -> None:
    agent, state = _applying_agent(tmp_path)
    agent.reconcile_once(state)
    assert agent.status is not None
    assert (agent.status.applied_version, agent.status.applied_cluster_version) == (5, 9)
    assert agent._report_now.is_set()  # the server hears of it now, not at the next heartbeat


@pytest.mark.parametrize("broken", ["dns", "ingress"])
def test_a_failed_step_keeps_the_state_unapplied(tmp_path: Path, broken: str) -> None:
    agent, state = _applying_agent(tmp_path, fail=broken)
    agent.reconcile_once(state)
    assert agent.status is not None and agent.status.applied_version is None
    agent.late_steps, agent.steps = [], []
    agent.reconcile_once(state.model_copy(update={"version": 6}))
    assert agent.status.applied_version == 6

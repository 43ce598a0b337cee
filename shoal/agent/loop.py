"""The agent main loop: long-poll the node state, reconcile the machine to it, report status.

The top of the agent. Three threads besides the health monitor and the HTTP server:
- the poller long-polls `GET /nodes/<me>/state?since=V&wait=30`, saves each new version to disk
  (atomically) and wakes the reconciler; on errors it retries with jittered back-off; when the
  server keeps refusing the node's credential (the node was removed), the node fences itself
  (`retry.Fence`): it stops its containers, since the cluster runs its replicas elsewhere;
- the reconciler (the calling thread) runs the steps in order images → containers → network →
  firewall → DNS, refreshes the status, then runs the late steps (WireGuard, ingress, the agent's
  endpoints), on each new state, on a health change and every `resync_s`; a step that fails is
  logged and the next one still runs;
- the reporter posts the latest `NodeStatus` every `heartbeat_s` and right after a change; once
  every step of a pass succeeded, the report names that state's version as applied (the server's
  deploy waits for every node to apply the state that lists its new replicas).
On start the saved state is loaded and reconciled before the server answers, so the node keeps
serving through a server or database outage and adopts its containers after an agent restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from shoal import __version__
from shoal.agent.config import AgentConfig, NodeRecord
from shoal.agent.health import HealthMonitor
from shoal.agent.metrics import AgentMetrics
from shoal.agent.reconcilers.containers import ContainersReconciler, Seen, health_check
from shoal.agent.report import container_statuses, leftover_statuses, read_capacity
from shoal.agent.retry import Backoff, Fence, refusal
from shoal.agent.statefile import load_state, save_state
from shoal.errors import first_line
from shoal.model.state import NodeState
from shoal.model.status import Capacity, NodeStatus, PeerStatus

log = logging.getLogger(__name__)

AGENT_VERSION = __version__  # reported in every status: `shoal node ls` VERSION
# A progress report ("pulling") waits this long for its pass to refresh the status: a start that
# finishes by then is reported once, as running, and the post does not compete with the start for
# the CPU.
PROGRESS_DELAY_S = 0.2


class ControlClient(Protocol):
    """What the loop needs of shoal.client (the node's view of the API)."""

    def get_node_state(self, name: str, since: int, wait: float) -> NodeState: ...
    def post_status(self, name: str, status: NodeStatus) -> None: ...


# A reconcile step after containers: (name, run(state)); built by shoal.agent.assemble.
Step = tuple[str, Callable[[NodeState], object]]


@dataclass
class Agent:
    config: AgentConfig
    node: NodeRecord
    client: ControlClient
    containers: ContainersReconciler
    steps: list[Step] = field(default_factory=list)  # after containers, in order
    pre_steps: list[Step] = field(default_factory=list)  # before containers (the bridge)
    late_steps: list[Step] = field(default_factory=list)  # after the status: none of it is a replica's
    ticks: list[Step] = field(default_factory=list)  # every supervise tick between passes (cheap reads)
    peers: Callable[[], list[PeerStatus]] = list
    lan_endpoint: Callable[[], str] = str  # a NAT'd node's WireGuard address behind its NAT
    metrics: AgentMetrics = field(default_factory=AgentMetrics)
    health: HealthMonitor | None = None
    capacity: Capacity = field(default_factory=read_capacity)
    state: NodeState | None = None
    status: NodeStatus | None = None
    server_ok: bool = False
    _wake: threading.Event = field(default_factory=threading.Event)
    _report_now: threading.Event = field(default_factory=threading.Event)
    _progress_news: threading.Event = field(default_factory=threading.Event)
    # clear from a pass's start until it has refreshed the status (its late steps may still run)
    _status_current: threading.Event = field(default_factory=lambda: _set(threading.Event()))
    _health_news: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _posting: threading.Lock = field(default_factory=threading.Lock)  # one report in flight
    _threads: list[threading.Thread] = field(default_factory=list)
    on_stop: list[Callable[[], None]] = field(default_factory=list)  # e.g. the HTTP server's stop
    _failing: dict[str, str] = field(default_factory=dict)  # step -> its last error line
    _unsaved: bool = False  # the state held is not on disk yet
    _save_error: str = ""  # the last failed save's error (logged once)
    _booted: bool = False  # a pass ran since the agent started (the first one supervises at boot)
    _pass_ok: bool = True  # no step of the running pass has failed
    applied: tuple[int, int] | None = None  # (version, cluster_version) of the last state fully applied
    fence: Fence = field(init=False)

    def __post_init__(self) -> None:
        self.fence = Fence(self.config.fence_after_s)

    @property
    def secrets_file(self) -> Path:
        return self.config.secrets_dir / ".state-secrets.json"

    # ---- lifecycle -------------------------------------------------------------------------
    def run(self) -> None:
        """Run until stop() is called: the calling thread reconciles."""
        self.state = load_state(self.config.state_file, self.secrets_file)
        if self.health is None:
            self.health = HealthMonitor(self.containers.runtime.exec_probe, self._health_changed)
        self.health.start()
        self.containers.stopped = self._wake.set  # the pass after a background stop removes it
        self.containers.pulled = self._wake.set  # the pass after a background pull starts it
        self._spawn("poller", self._poll_forever)
        self._spawn("reporter", self._report_forever)
        try:
            self._reconcile_forever()
        finally:
            self.health.stop()
            for close in self.on_stop:
                close()
            for thread in self._threads:  # daemons: a poller inside its long poll is left behind
                thread.join(timeout=1.0)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._report_now.set()

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    # ---- poller ----------------------------------------------------------------------------
    def _poll_forever(self) -> None:
        backoff = Backoff(max_s=self.config.backoff_max_s)
        while not self._stop.is_set():
            since = self.state.version if self.state else -1
            try:
                fresh = self.client.get_node_state(self.node.name, since, self.config.poll_wait_s)
            except Exception as exc:  # any failure of the server: keep serving the saved state
                self._server_down(exc, backoff)
                continue
            self.server_ok = True
            self.fence.accepted()
            backoff.ok()
            if not self.accept(fresh) and self._unsaved:
                self._save()  # a state not yet on disk (disk full): retried at each poll

    def _server_down(self, exc: Exception, backoff: Backoff) -> None:
        if self.server_ok or backoff.current == 0:
            log.warning("server unreachable, keeping the saved state: %s", first_line(exc))
        self.server_ok = False
        self.metrics.server_errors.inc()
        self._refused(exc)
        self._stop.wait(min(backoff.failed(), self.fence.due_in()))  # ask again when a fence is due

    def _refused(self, exc: Exception) -> None:
        """A refusal of the node's credential, once it lasted the fence's grace, fences the node."""
        if refusal(exc) and self.fence.refused():
            self.fence_containers(exc)

    def fence_containers(self, exc: Exception) -> None:
        """Stop every container (the cluster runs them elsewhere) and keep them stopped across an
        agent restart; any state the server sends again (the node is back) is taken."""
        state = self.state
        count = 0 if state is None else len(state.containers)
        log.error(
            "fenced: the server has refused this node's credential for %gs (%s): the node was removed;"
            " stopping its %d container(s)",
            self.fence.grace_s,
            first_line(exc),
            count,
        )
        if state is None:
            return
        fenced = state.model_copy(update={"version": -1, "containers": [], "secrets": []})
        save_state(self.config.state_file, fenced, self.secrets_file)
        self.state = fenced
        self._wake.set()

    def accept(self, fresh: NodeState) -> bool:
        """Take a state from the server: saved and reconciled when newer than the one held."""
        current = self.state
        if current is not None and fresh.version <= current.version and fresh.node == current.node:
            return False
        self.state, self._unsaved = fresh, True  # served even when it cannot be saved
        self._save()
        self._wake.set()
        return True

    def _save(self) -> None:
        """Save the state held (for a restart without the server); a failure is one log line and
        the poller tries again, never its end (it would leave the node on this state for good
        while its heartbeats go on)."""
        state = self.state
        if state is None:
            return
        try:
            if state.secrets or state.registry_auths or state.ingress_settings:
                self.containers.secrets.ensure()  # the files kept apart live on tmpfs
            save_state(self.config.state_file, state, self.secrets_file)
        except OSError as exc:
            if self._save_error != str(exc):
                log.warning("saving the node state failed (retried at the next poll): %s", exc)
            self._save_error = str(exc)
            return
        if self._save_error:
            log.info("node state saved again")
        self._unsaved, self._save_error = False, ""

    # ---- reconciler ------------------------------------------------------------------------
    def _reconcile_forever(self) -> None:
        next_full, dirty = 0.0, True
        while not self._stop.is_set():
            state = self.state
            if state is not None and self._health_news.is_set():
                self._report_health(state)
            due = dirty or time.monotonic() >= next_full or self.containers.retry_due()
            if state is not None and due:
                self.reconcile_once(state)
                next_full = time.monotonic() + self.config.resync_s
            elif state is not None:
                self._supervise(state)
            dirty = self._wake.wait(self.config.supervise_s)
            self._wake.clear()

    def _supervise(self, state: NodeState) -> None:
        """Between full passes: the ticks (the relay watch), the runtime's restart policies; a
        report when one acted."""
        for name, run in self.ticks:
            self._timed(name, lambda run=run: run(state))  # type: ignore[misc]
        try:
            acted = self.containers.runtime.supervise(force=False)
        except Exception:  # the supervisor is retried on the next tick
            log.exception("supervising containers failed")
            return
        if acted:
            log.info("supervisor: %s", "; ".join(acted))
            self._progress(state)

    def reconcile_once(self, state: NodeState) -> None:
        """One pass over every step; a failing step never stops the others."""
        self._status_current.clear()
        try:
            self._pass(state)
        finally:
            self._status_current.set()

    def _pass(self, state: NodeState) -> None:
        self._pass_ok = True
        boot, self._booted = not self._booted, True  # the first pass since the agent started
        self._timed("supervise", lambda: self.containers.runtime.supervise(boot=boot))
        for name, run in self.pre_steps:
            self._timed(name, lambda run=run: run(state))  # type: ignore[misc]
        self._timed("containers", lambda: self._containers(state))
        for name, run in self.steps:
            self._timed(name, lambda run=run: run(state))  # type: ignore[misc]
        # a replica is reported running once its DNS name and firewall rules are in place; what
        # follows (the mesh, the edge, the agent's own endpoints) no report waits for
        self._timed("status", lambda: self.refresh_status(state))
        self._status_current.set()
        for name, run in self.late_steps:
            self._timed(name, lambda run=run: run(state))  # type: ignore[misc]
        if self._pass_ok:
            self._applied(state)

    def _applied(self, state: NodeState) -> None:
        """Every step applied `state`: the report says so (the server's deploy waits for it)."""
        self.applied = (state.version, state.cluster_version)
        with self._lock:
            status = self.status
            if status is None or (status.applied_version, status.applied_cluster_version) == self.applied:
                return
            self.status = status.model_copy(
                update={"applied_version": state.version, "applied_cluster_version": state.cluster_version}
            )
        self._report_now.set()

    def _containers(self, state: NodeState) -> None:
        observed = self.containers.runtime.observe()
        self._track_health(state, observed)  # one its policy restarted is checked afresh
        unhealthy = self._unhealthy(state, observed)
        self.containers.progress = lambda: self._progress(state, during_pass=True)
        plan = self.containers.reconcile(state, unhealthy, observed)
        for spec in plan.restart:
            if self.health is not None:
                self.health.forget(spec.id)
        self.metrics.restarts.inc(len(plan.restart))

    def _progress(self, state: NodeState, during_pass: bool = False) -> None:
        try:
            self.refresh_status(state)
        except Exception as exc:  # progress reports are best effort
            log.debug("progress report: %s", exc)
        if during_pass:
            self._progress_news.set()

    def _unhealthy(self, state: NodeState, observed: dict[str, Seen]) -> list[str]:
        """Running containers whose current process failed its health check (a dead one is the
        restart policy's, which the supervisor applies)."""
        if self.health is None:
            return []
        running = [c.id for c in state.containers if (seen := observed.get(c.id)) and seen.state == "running"]
        states = {cid: self.health.state(cid) for cid in running}
        return [cid for cid, h in states.items() if h is not None and h.status == "unhealthy"]

    def _timed(self, name: str, run: Callable[[], object]) -> None:
        began = time.monotonic()
        try:
            run()
            self._failing.pop(name, None)
        except Exception as exc:  # one broken step must not stop the node from serving
            self._step_failed(name, exc)
        finally:
            self.metrics.reconcile_seconds.labels(name).observe(time.monotonic() - began)

    def _step_failed(self, name: str, exc: Exception) -> None:
        """The traceback once, then one line per pass while the same error repeats."""
        self._pass_ok = False
        line = first_line(exc)
        if self._failing.get(name) == line:
            log.warning("reconcile step %s still failing: %s", name, line)
        else:
            log.exception("reconcile step %s failed", name)
        self._failing[name] = line
        self.metrics.step_errors.labels(name).inc()

    def _health_changed(self, container_id: str, status: str) -> None:
        self._health_news.set()
        self._wake.set()

    def _report_health(self, state: NodeState) -> None:
        """A health change is news: the reporter posts it at once (this thread never waits on the
        server, so a slow report cannot hold up a reconcile pass)."""
        self._health_news.clear()
        self._progress(state)
        self._report_now.set()

    # ---- status ----------------------------------------------------------------------------
    def refresh_status(self, state: NodeState) -> NodeStatus:
        observed = self.containers.runtime.observe()
        self._track_health(state, observed)
        status = self.build_status(state, observed)
        previous = self.status
        with self._lock:
            self.status = status
        self.metrics.observe(status)
        if previous is None or _changed(previous, status):
            self._report_now.set()
        return status

    def _track_health(self, state: NodeState, observed: dict[str, Seen]) -> None:
        if self.health is None:
            return
        for spec in state.containers:
            seen = observed.get(spec.id)
            check = health_check(spec, seen)
            if check is None or seen is None or seen.state != "running":
                continue
            known = self.health.state(spec.id)
            if known is not None and seen.started_at and known.started_at != seen.started_at:
                self.health.forget(spec.id)  # restarted by its policy: a new process, a new check
            self.health.track(spec.id, check, seen.started_at or time.time())
        for container_id in self.health.tracked() - {c.id for c in state.containers}:
            self.health.forget(container_id)

    def build_status(self, state: NodeState, observed: dict[str, Seen]) -> NodeStatus:
        health = {c.id: h for c in state.containers if self.health and (h := self.health.state(c.id))}
        statuses = container_statuses(
            state.containers, observed, self.containers.outcomes, health, self.containers.restarts
        ) + leftover_statuses((c.id for c in state.containers), observed)
        return NodeStatus(
            node=self.node.name,
            state_version=state.version,
            time=time.time(),
            containers=statuses,
            peers=self._peers(),
            lan_endpoint=self.lan_endpoint(),
            capacity=self.capacity,
            agent_version=AGENT_VERSION,
            applied_version=self.applied[0] if self.applied else None,
            applied_cluster_version=self.applied[1] if self.applied else None,
        )

    def _peers(self) -> list[PeerStatus]:
        try:
            return self.peers()
        except Exception as exc:  # peers are informative; never stop a report for them
            log.warning("reading peers: %s", exc)
            return []

    # ---- reporter --------------------------------------------------------------------------
    def _report_forever(self) -> None:
        backoff = Backoff(first_s=self.config.heartbeat_s, max_s=self.config.backoff_max_s)
        while not self._stop.is_set():
            self._report_now.wait(backoff.delay or self.config.heartbeat_s)
            if self._progress_news.is_set():
                self._progress_news.clear()
                self._status_current.wait(PROGRESS_DELAY_S)
            self._report_now.clear()
            if self._stop.is_set():
                return
            self._report_once(backoff)

    def _report_once(self, backoff: Backoff) -> None:
        """Post the latest status (the reporter thread only, so reports reach the server in the
        order they were made; the lock keeps that true for any other caller)."""
        with self._posting:
            with self._lock:
                status = self.status
            if status is None:
                return
            try:
                self.client.post_status(self.node.name, status.model_copy(update={"time": time.time()}))
            except Exception as exc:  # the next heartbeat retries
                log.debug("posting status failed: %s", exc)
                self._refused(exc)
                backoff.failed()
                return
        self.fence.accepted()
        backoff.ok()


def _set(event: threading.Event) -> threading.Event:
    event.set()
    return event


def _changed(old: NodeStatus, new: NodeStatus) -> bool:
    """Whether a report says something new (beyond its time and peers' counters)."""
    strip = {"time", "peers"}
    return bool(old.model_dump(exclude=strip) != new.model_dump(exclude=strip))

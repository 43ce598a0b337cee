"""The controller: one leader at a time (advisory lock) turns services into tasks on nodes.

Every `controller_interval_s` and on NOTIFY `shoal_control` the leader detects dead nodes
(`scheduler.liveness`: never on the server's own lost view), plans (`planning.plan`: the
scheduler's placement and rollout steps) and applies the plan in ONE transaction, bumping the
affected nodes' state.
Another server takes over when the leader's session ends (its lock frees with it).
"""

from __future__ import annotations

import logging
import threading
import time

import psycopg

from shoal.control import planning, rebalancing
from shoal.control.config import ServerConfig
from shoal.control.revision import RevisionSpec
from shoal.control.scheduler import liveness
from shoal.control.store import events, nodes, services, tasks, volumes
from shoal.control.store.db import (
    CONTROL_CHANNEL,
    Conn,
    Database,
    DatabaseBusy,
    connect,
    lock_planning,
    notify_all_nodes,
    notify_nodes,
)
from shoal.errors import ShoalError

log = logging.getLogger(__name__)
LEADER_LOCK = 0x5A0A1C
STOPPED_PURGE_S = 60.0
EVENTS_KEPT = 10_000  # `shoal events` and the UI read the newest; Nomad keeps fewer
BATCH_S = 0.005  # after a wake-up, notifications that follow this closely join the same tick


class Controller:
    def __init__(self, config: ServerConfig) -> None:
        self._config = config
        self._db = Database(config.dsn, max_size=2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shoal-controller", daemon=True)
        self.leader = threading.Event()
        self.ticks = 0
        self._since = time.monotonic()
        self._episode: liveness.Episode | None = None  # the server suspecting its own view
        self._ticked: float | None = None  # when the last tick ended (a long gap: we were stalled)
        self._settle = rebalancing.Settle(config.rebalance_settle_s)  # automatic rebalances

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._db.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._lead()
            except (psycopg.Error, OSError, ShoalError) as exc:
                log.warning("controller: %s", str(exc).strip().splitlines()[:1])
            self.leader.clear()
            self._stop.wait(1.0)

    def _lead(self) -> None:
        with connect(self._config.dsn) as lock_conn:
            while not self._stop.is_set():
                row = lock_conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (LEADER_LOCK,)).fetchone()
                if row and row["ok"]:
                    break
                self._stop.wait(1.0)
            else:
                return
            log.info("controller: leading")
            self.leader.set()
            self._since, self._ticked = time.monotonic(), None
            lock_conn.execute(f"LISTEN {CONTROL_CHANNEL}")
            self._loop(lock_conn, serving=True)

    def _loop(self, lock_conn: Conn, serving: bool) -> None:
        last_serving = 0.0
        while not self._stop.is_set():
            due = serving and time.monotonic() - last_serving >= self._config.dns_interval_s
            try:
                self.tick(due)
            except DatabaseBusy as exc:
                log.info("controller: %s", exc)
                continue
            if due:
                serving, last_serving = False, time.monotonic()
            serving |= self._wait_for_work(lock_conn, last_serving, pending=serving)
            lock_conn.execute("SELECT 1")

    def _wait_for_work(self, lock_conn: Conn, last_serving: float, pending: bool = False) -> bool:
        """Until the interval ends or work arrives; True when replicas' serving state changed.

        A poke (deploy, join, scale, ...) ends the wait at once, so a change is planned as it
        happens, not at the next tick; so does a serving change once the DNS/ingress interval
        has passed. Notifications arriving together are taken in one tick. A serving change held
        back by the interval (`pending`) ends the wait as the interval ends: a deploy waits for
        its replicas to be published, so the refresh is not left to the next tick.
        """
        serving = False
        for note in lock_conn.notifies(timeout=self._wait_s(last_serving, pending)):
            is_serving = note.payload == "serving"
            serving |= is_serving
            refresh_due = time.monotonic() - last_serving >= self._config.dns_interval_s
            if not is_serving or refresh_due:
                break
        for note in lock_conn.notifies(timeout=BATCH_S):
            serving |= note.payload == "serving"
        return serving

    def _wait_s(self, last_serving: float, pending: bool) -> float:
        interval, dns_interval = self._config.controller_interval_s, self._config.dns_interval_s
        return wait_s(interval, dns_interval, last_serving, pending, time.monotonic())

    def tick(self, serving: bool = False) -> None:
        stalled = self._stalled_s()  # before any wait for a lock, which is no stall of ours
        try:
            with self._db.transaction() as conn:
                lock_planning(conn)
                down = self._detect(conn, stalled)
                tasks.purge_stopped(conn, STOPPED_PURGE_S)
                events.trim(conn, EVENTS_KEPT)
                changed = place(conn, self._settle) or bool(down) or serving
                if changed:
                    notify_all_nodes(conn)
        finally:
            self._ticked = time.monotonic()
        self.ticks += 1

    def _stalled_s(self) -> float:
        """How much longer than its own wait the controller went without ticking."""
        if self._ticked is None:
            return 0.0
        return max(0.0, time.monotonic() - self._ticked - self._config.controller_interval_s)

    def _detect(self, conn: Conn, stalled_s: float) -> list[str]:
        """The failure detector: the nodes declared lost in this tick, with their events."""
        grace = self._config.grace_s
        heard = [
            liveness.Heard(r["name"], r["age_s"], r["down"], r["name"] == self._config.server_node)
            for r in nodes.heartbeat_ages(conn)
        ]
        now = time.monotonic()
        verdict = liveness.judge(heard, grace_s=grace, now=now, episode=self._episode, stalled_s=stalled_s)
        self._note_episode(conn, verdict)
        if now - self._since < grace or not verdict.down:
            return []  # a new leader first hears every node out
        down = nodes.mark_down(conn, list(verdict.down), grace)
        for name in down:
            events.emit(conn, "node.down", name, f"node {name} missed heartbeats for {grace:g}s")
        return down

    def _note_episode(self, conn: Conn, verdict: liveness.Verdict) -> None:
        """One event when the server begins to suspect itself; a log line when it stops."""
        if verdict.began:
            subject = self._config.server_node or "server"
            message = f"server suspects itself: {verdict.reason}; marking no node down"
            events.emit(conn, "server.suspect", subject, message)
            log.warning("controller: %s", message)
        elif self._episode is not None and verdict.episode is None:
            log.info("controller: trusting its view of the nodes again")
        self._episode = verdict.episode


def wait_s(interval_s: float, dns_interval_s: float, last_serving: float, pending: bool, now: float) -> float:
    """How long the controller waits for work: its interval, or less when a serving refresh is
    held back by the DNS/ingress interval (it is made as that interval ends)."""
    if not pending:
        return interval_s
    return min(interval_s, max(last_serving + dns_interval_s - now, 0.001))


def place(conn: Conn, settle: rebalancing.Settle | None = None) -> bool:
    """Plan from the caller's transaction and apply the plan in it (the caller took
    `lock_planning` before touching any row); True when serving replicas may have changed.
    The leading controller passes its `settle`: only its ticks start rebalance moves."""
    plan = current_plan(conn)
    if settle is not None:
        rebalancing.begin(conn, plan, settle)
    return apply(conn, plan)


def current_plan(conn: Conn) -> planning.ControllerPlan:
    """What placement, rollouts and rebalancing would do now (read in the caller's transaction)."""
    specs = services.current_specs(conn)
    svcs = [
        planning.PlannedService(
            name=r["name"],
            revision=r["revision"],
            replicas=r["replicas"],
            spec=RevisionSpec.model_validate(specs[r["name"]]),
            rollout_state=r["rollout_state"],
            rollout_message=r["rollout_message"] or "",
        )
        for r in services.all_services(conn)
    ]
    running = [r for r in tasks.all_tasks(conn) if r["desired_state"] == "run"]
    return planning.plan(nodes.all_nodes(conn), svcs, running, time.time(), volumes.all_volumes(conn))


def _starts(conn: Conn, plan: planning.ControllerPlan) -> list[tuple[str, int, int, str, str | None]]:
    subnets = {r["name"]: r["subnet"] for r in nodes.all_nodes(conn)}
    used = tasks.used_ips(conn)
    out: list[tuple[str, int, int, str, str | None]] = []
    for service, replica, revision, node in plan.start:
        if service in plan.addressless:
            out.append((service, replica, revision, node, None))
            continue
        held = used.setdefault(node, set())
        ip = tasks.free_ip(subnets[node], held)
        if ip is None:
            plan.unplaced[(service, replica)] = f"no free address in node {node}'s subnet"
            continue
        held.add(ip)
        out.append((service, replica, revision, node, ip))
    return out


def apply(conn: Conn, plan: planning.ControllerPlan) -> bool:
    """Apply a plan inside the caller's transaction; True when serving replicas may have changed."""
    touched = set(tasks.stop(conn, plan.stop)) if plan.stop else set()
    new = _starts(conn, plan)
    if new:
        tasks.insert_many(conn, new)
    touched |= {n[3] for n in new}
    volumes.bind_many(conn, [(b.project, b.name, b.node) for b in plan.bind])
    _unplaced(conn, plan.unplaced)
    for name, number in plan.revert.items():
        services.set_revision(conn, name, number, services.revision_spec(conn, name, number))
    for name, (state, message) in plan.rollout.items():
        services.set_rollout(conn, name, state, message)
        events.emit(conn, f"rollout.{state.replace(' ', '-')}", name, message)
    notify_nodes(conn, touched)
    return bool(plan.stop or plan.revert)


def _unplaced(conn: Conn, now: dict[tuple[str, int], str]) -> None:
    """Store the replicas that could not be placed; a new or changed reason is an event."""
    fresh = volumes.set_unplaced(conn, now)
    events.emit_many(
        conn,
        [
            ("replica.unplaced", service, f"{service} replica {replica} is unplaced: {why}")
            for (service, replica), why in fresh
        ],
    )

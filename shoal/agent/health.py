"""Compose health checks: a pure state machine and the small thread that runs the probes.

The agent loop tracks each running container that has a `healthcheck`; the monitor runs its
probe with the runtime's exec (`runc exec`) every interval, with a timeout, and moves it
starting → healthy / unhealthy after `retries` failures (failures inside the start period do
not count, as in Docker). The containers reconciler restarts unhealthy replicas per their
restart policy; the status report carries the health so the server drops them from DNS and
ingress.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from shoal.model.container import HealthCheck
from shoal.model.status import Health

log = logging.getLogger(__name__)

OUTPUT_KEEP = 200  # characters of the last probe's output kept for the status message
PROBE_OUTPUT_MAX = 4096  # bytes of a probe's output read at all (as Docker keeps)
PROBE_TIMEOUT_MAX_S = 300.0  # whatever the deploy file says, a probe is killed after this

# exec(container_id, argv, timeout_s) -> (exit_code, output); raises on timeout or failure
ProbeExec = Callable[[str, list[str], float], tuple[int, str]]


@dataclass(frozen=True)
class HealthState:
    status: Health
    started_at: float
    next_at: float
    failures: int = 0
    output: str = ""


def probe_argv(test: list[str]) -> list[str] | None:
    """The command a Compose `test` runs; None for `NONE` or an empty test."""
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD":
        return list(test[1:]) or None
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(test[1:])]
    return ["/bin/sh", "-c", " ".join(test)]  # a bare string in Compose means CMD-SHELL


def from_image(image_config: Mapping[str, Any]) -> HealthCheck | None:
    """The image's own HEALTHCHECK (``config.Healthcheck``; durations in ns, 0 = Docker's default)."""
    raw = (image_config.get("config") or {}).get("Healthcheck") or {}
    test = [str(t) for t in raw.get("Test") or []]
    if not test or test[0] == "NONE":
        return None

    def seconds(key: str, default: float) -> float:
        value = raw.get(key) or 0
        return value / 1e9 if isinstance(value, int) and value > 0 else default

    return HealthCheck(
        test=test, interval_s=seconds("Interval", 30.0), timeout_s=seconds("Timeout", 30.0),
        retries=int(raw.get("Retries") or 3), start_period_s=seconds("StartPeriod", 0.0),
        start_interval_s=seconds("StartInterval", 0.0) or None,
    )  # fmt: skip


def initial(check: HealthCheck, started_at: float) -> HealthState:
    return HealthState(
        "starting", started_at, started_at + _interval(check, "starting", started_at, started_at)
    )


def _interval(check: HealthCheck, status: Health, started_at: float, now: float) -> float:
    """`start_interval` while starting within the start period (Docker's), else `interval`."""
    starting = status == "starting" and now < started_at + check.start_period_s
    return check.start_interval_s if starting and check.start_interval_s else check.interval_s


def due(state: HealthState, now: float) -> bool:
    return now >= state.next_at


def record(state: HealthState, check: HealthCheck, ok: bool, now: float, output: str = "") -> HealthState:
    """The state after one probe finished at `now` (ok: exit code 0 within the timeout)."""
    nxt = now + _interval(check, state.status, state.started_at, now)
    out = output[-OUTPUT_KEEP:]
    if ok:
        healthy_at = now + check.interval_s
        return dataclasses.replace(state, status="healthy", failures=0, next_at=healthy_at, output=out)
    in_start_period = state.status == "starting" and now < state.started_at + check.start_period_s
    if in_start_period:
        return dataclasses.replace(state, next_at=nxt, output=out)
    failures = state.failures + 1
    status: Health = "unhealthy" if failures >= max(check.retries, 1) else state.status
    return dataclasses.replace(state, status=status, failures=failures, next_at=nxt, output=out)


def message(state: HealthState) -> str:
    """The one line reported for an unhealthy container."""
    last = state.output.strip().splitlines()[-1] if state.output.strip() else ""
    return f"health check failed {state.failures} times" + (f": {last}" if last else "")


@dataclass
class _Tracked:
    check: HealthCheck
    argv: list[str]
    state: HealthState
    running: Future[None] | None = None


class HealthMonitor:
    """Runs due probes in a small pool; `on_change(id, status)` is called when a status changes."""

    def __init__(self, run: ProbeExec, on_change: Callable[[str, Health], None], tick_s: float = 0.2) -> None:
        self._run, self._on_change, self._tick = run, on_change, tick_s
        self._lock = threading.Lock()
        self._tracked: dict[str, _Tracked] = {}
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="health")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="health", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def track(self, container_id: str, check: HealthCheck, started_at: float) -> None:
        """Start tracking a container (no-op when already tracked)."""
        argv = probe_argv(check.test)
        with self._lock:
            if argv is None or container_id in self._tracked:
                return
            self._tracked[container_id] = _Tracked(check, argv, initial(check, started_at))

    def forget(self, container_id: str) -> None:
        with self._lock:
            self._tracked.pop(container_id, None)

    def tracked(self) -> set[str]:
        with self._lock:
            return set(self._tracked)

    def state(self, container_id: str) -> HealthState | None:
        with self._lock:
            item = self._tracked.get(container_id)
            return item.state if item else None

    def _loop(self) -> None:
        while not self._stop.wait(self._tick):
            now = time.time()
            with self._lock:
                ready = [
                    (cid, t) for cid, t in self._tracked.items() if t.running is None and due(t.state, now)
                ]
                for cid, item in ready:
                    item.running = self._pool.submit(self._probe, cid, item)

    def _probe(self, container_id: str, item: _Tracked) -> None:
        try:
            code, output = self._run(container_id, item.argv, min(item.check.timeout_s, PROBE_TIMEOUT_MAX_S))
        except Exception as exc:  # a timeout or a failed exec is a failed probe
            code, output = -1, str(exc)
        self._record(container_id, item, code == 0, output)

    def _record(self, container_id: str, item: _Tracked, ok: bool, output: str) -> None:
        with self._lock:
            before = item.state.status
            item.state = record(item.state, item.check, ok, time.time(), output)
            item.running = None
            after = item.state.status
            current = self._tracked.get(container_id) is item
        if current and after != before:
            log.info("container %s is %s", container_id, after)
            self._on_change(container_id, after)

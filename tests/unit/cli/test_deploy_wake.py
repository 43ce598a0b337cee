"""`shoal deploy` waits between polls on the event stream: news wakes it, the poll stays (cli.deploy)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from shoal.cli.deploy import EventWake, wait
from shoal.cli.progress import Progress
from shoal.client.models import Event, ServiceDetail, Task
from shoal.client.receipt import DeployedService
from shoal.errors import ShoalError


class FakeStream:
    """An event stream: yields one event each time `release()` is called; ends when closed."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.since: int | None = None
        self.gate = threading.Semaphore(0)
        self.closed = threading.Event()

    def stream_events(self, since: int | None = None) -> Iterator[Event]:
        self.since = since
        if self.fail:
            raise ShoalError("cannot reach server at https://x: refused")
        while True:
            self.gate.acquire()
            if self.closed.is_set():
                raise ShoalError("cannot reach server at https://x: closed")
            yield Event(id=1, time="2026-11-26T00:00:00Z", kind="replica.running", subject="t", message="")

    def release(self) -> None:
        self.gate.release()

    def close(self) -> None:
        self.closed.set()
        self.gate.release()


def test_news_wakes_the_wait_and_is_cleared_for_the_next() -> None:
    stream = FakeStream()
    wake = EventWake(stream, since=41)  # type: ignore[arg-type]
    stream.release()
    assert wake.wait(30.0)  # woken by the event, long before the timeout
    assert not wake.wait(0.01)  # nothing new since
    wake.close()
    wake.thread.join(5)
    assert not wake.thread.is_alive() and stream.since == 41


def test_a_broken_stream_only_stops_waking() -> None:
    stream = FakeStream(fail=True)
    wake = EventWake(stream, since=0)  # type: ignore[arg-type]
    wake.thread.join(5)
    assert not wake.thread.is_alive()
    assert not wake.wait(0.01)


def _detail(state: str) -> ServiceDetail:
    task = Task(id="web-1", service="web", replica=1, revision=1, state=state)
    return ServiceDetail(name="web", revision=1, replicas=1, tasks=[task])


class FakeApi:
    def __init__(self, states: list[str]) -> None:
        self.states = states

    def service(self, name: str) -> ServiceDetail:
        return _detail(self.states.pop(0))


def test_wait_pauses_between_polls_through_the_given_pause() -> None:
    pauses: list[float] = []
    shown: list[list[Progress]] = []
    api: Any = FakeApi(["pending", "pulling", "running"])
    web = [DeployedService(name="web", revision=1)]
    states = wait(api, web, 60, lambda s: shown.append(list(s)), pauses.append)
    assert [s.done for s in states] == [True]
    assert len(pauses) == 2 and all(0 < p <= 0.25 for p in pauses)
    assert len(shown) == 3

"""Two servers on one database: both serve, one leads; kill -9 the leader and the other takes over."""

from __future__ import annotations

import signal
import time

import httpx

from tests.integration.control.helpers import join, put_services, tasks, wait_for, web_spec
from tests.support.server_fixtures import Server, ServerFactory, tls


def _role(srv: Server) -> str:
    try:
        return str(httpx.get(f"{srv.url}/api/v1/health", verify=tls(srv.ca), timeout=3).json()["controller"])
    except httpx.HTTPError:
        return "unreachable"


def test_standby_takes_over_after_kill_9(server_factory: ServerFactory) -> None:
    first = server_factory()
    wait_for(lambda: _role(first) == "leader", what="first server to lead")
    second = server_factory(share=first)
    time.sleep(1.5)
    assert _role(second) == "standby" and _role(first) == "leader"
    assert first.proc is not None
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait()
    started = time.monotonic()
    wait_for(lambda: _role(second) == "leader", timeout=10, what="take-over")
    assert time.monotonic() - started < 5
    join(second, "t1")
    put_services(second, "p", {"web": web_spec("web", replicas=1)})
    wait_for(lambda: tasks(second), what="the new leader to place tasks")

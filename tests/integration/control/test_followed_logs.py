"""A followed log ends when its reader goes away: no thread left on the server, no connection left
to the agent. A real server relays to a real agent endpoint (`AgentHttpd`) on loopback: the
cluster CIDR is put in 127.0.0.0/8 so the node's overlay address is a loopback one."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shoal.agent.httpd import AgentHttpd, create_app
from shoal.agent.runtime.logs import LogLine
from tests.integration.control.helpers import put_services, wait_for
from tests.support.server_fixtures import FakeAgent, ServerFactory, free_port

pytestmark = pytest.mark.integration


class QuietContainer:
    """A container that logged one line and then nothing: what a follower idles on."""

    def __init__(self) -> None:
        self.following = 0
        self.ended = threading.Event()

    def logs(self, container_id: str, since: float | None = None, tail: int | None = None) -> list[Any]:
        return []

    def follow_logs(
        self,
        container_id: str,
        since: float | None = None,
        tail: int | None = None,
        idle_s: float | None = None,
    ) -> Iterator[Any]:
        self.following += 1
        try:
            yield LogLine("2026-01-01T00:00:00.000000000+00:00", 0.0, "stdout", "hello")
            while True:
                time.sleep(idle_s or 0.5)
                yield None  # the endpoint's keepalive: how it learns its reader left
        finally:
            self.following -= 1
            self.ended.set()

    def exec(self, container_id: str, argv: Any, timeout: float = 30.0) -> Any:
        raise NotImplementedError


def threads_of(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


def test_a_followed_log_ends_when_its_reader_leaves(server_factory: ServerFactory) -> None:
    srv = server_factory("--grace", "3", "--cluster-cidr", "127.77.0.0/16", start=False)
    config_path = srv.data_dir / "server.json"
    config = json.loads(config_path.read_text())
    config["agent_port"] = port = free_port()
    config_path.write_text(json.dumps(config))
    srv.start()
    agent = FakeAgent(srv, "quiet").start(poll_wait=25)
    container = QuietContainer()
    app = create_app(container, agent.joined["agent_secret"], lambda: b"")
    httpd = AgentHttpd(app, agent.joined["overlay_ip"], port)
    httpd.start()
    try:
        put_services(srv, "p", {"web": {"template": {"id": "", "service": "web", "image": "r/web:1"}}})
        with srv.client() as admin:
            wait_for(lambda: admin.get("/api/v1/services/web").json()["running"] == 1, timeout=15)
        assert srv.proc is not None
        baseline = threads_of(srv.proc.pid)
        with (
            srv.client() as admin,
            admin.stream("GET", "/api/v1/services/web/logs", params={"follow": 1}) as got,
        ):
            first = next(got.iter_lines())
            assert first.endswith("stdout hello")
            assert container.following == 1
        assert container.ended.wait(15), "the agent still serves the followed log"
        wait_for(lambda: threads_of(srv.proc.pid) <= baseline, timeout=10)
    finally:
        httpd.stop()
        agent.stop()


def test_the_agent_endpoint_refuses_past_its_pool_rather_than_queueing(tmp_path: Path) -> None:
    """More idle connections than workers and queue: the next one gets 503 at once."""
    import socket

    from shoal.agent import httpd as endpoint

    port = free_port()
    server = AgentHttpd(create_app(QuietContainer(), "s3cret", lambda: b"m"), "127.0.0.1", port)
    server.start()
    held: list[socket.socket] = []
    try:
        for _ in range(endpoint.WORKERS + endpoint.QUEUED):
            held.append(socket.create_connection(("127.0.0.1", port)))
        time.sleep(0.3)
        started = time.monotonic()
        answer = httpx.get(f"http://127.0.0.1:{port}/metrics", headers={"Authorization": "Bearer s3cret"})
        assert answer.status_code == 503 and "busy" in answer.json()["error"]
        assert time.monotonic() - started < 2
        for sock in held:
            sock.close()
        wait_for(
            lambda: (
                httpx.get(
                    f"http://127.0.0.1:{port}/metrics",
                    headers={"Authorization": "Bearer s3cret"},
                ).status_code
                == 200
            ),
            timeout=10,
        )
    finally:
        for sock in held:
            sock.close()
        server.stop()

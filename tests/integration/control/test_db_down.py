"""PostgreSQL stopped under a running server: 503 with a clear message, then recovery."""

from __future__ import annotations

import threading
import time

import httpx

from tests.integration.control.helpers import join, node_client, wait_for
from tests.support.server_fixtures import Postgres, Server, tls


def _health(srv: Server) -> httpx.Response:
    return httpx.get(f"{srv.url}/api/v1/health", verify=tls(srv.ca), timeout=20)


def test_database_down_is_503_then_recovers(postgres: Postgres, server: Server) -> None:
    with server.client() as c:
        assert c.get("/api/v1/nodes").status_code == 200
    postgres.stop()
    try:
        with server.client() as c:
            r = c.get("/api/v1/nodes")
        assert r.status_code == 503
        assert r.json()["error"].startswith("database unavailable: ")
        assert "\n" not in r.json()["error"]
        assert _health(server).status_code == 503
    finally:
        postgres.start()
    wait_for(lambda: _health(server).status_code == 200, timeout=20, what="recovery")
    with server.client() as c:
        assert c.get("/api/v1/nodes").status_code == 200


def test_long_polls_are_woken_again_after_an_outage(postgres: Postgres, server: Server) -> None:
    """The notification listener outlives the database's absence: a change after it comes back
    wakes a node's long-poll at once, not when the poll's wait runs out."""
    node = join(server, "dbw")
    postgres.stop()
    try:
        time.sleep(2)  # the listener loses its connection and fails to reconnect meanwhile
    finally:
        postgres.start()
    wait_for(lambda: _health(server).status_code == 200, timeout=20, what="recovery")
    time.sleep(2)  # the listener's next attempt
    with node_client(server, node) as n:
        version = n.get("/api/v1/nodes/dbw/state").json()["version"]
        got: dict[str, int] = {}

        def poll() -> None:
            got.update(n.get("/api/v1/nodes/dbw/state", params={"since": version, "wait": 40}).json())

        waiter = threading.Thread(target=poll)
        waiter.start()
        time.sleep(0.5)
        began = time.monotonic()
        with server.client() as admin:
            admin.post("/api/v1/nodes/dbw/labels", json={"labels": {"zone": "b"}})
        waiter.join(45)
    assert got["version"] > version
    assert time.monotonic() - began < 20, "woken only by the poll's own timeout"

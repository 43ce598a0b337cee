"""PostgreSQL stopped under a running server: 503 with a clear message, then recovery."""

from __future__ import annotations

import httpx

from tests.integration.control.helpers import wait_for
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

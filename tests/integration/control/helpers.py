"""Small helpers for the control plane's integration tests: join nodes, post status, deploy."""

from __future__ import annotations

from typing import Any

import httpx

from shoal.control import deploy
from shoal.control.revision import RevisionSpec
from shoal.control.store import nodes
from shoal.control.store.db import connect
from shoal.control.store.migrate import migrate
from tests.support.server_fixtures import Postgres, Server


def join(server: Server, name: str, **fields: Any) -> dict[str, Any]:
    body = {
        "token": server.join_token,
        "name": name,
        "public_key": f"key-{name}",
        "endpoint": fields.pop("endpoint", f"192.0.2.{len(name)}:51820"),
        "capacity": {"cpus": 4, "memory_bytes": 8 << 30},
        **fields,
    }
    with server.client(body["token"]) as c:  # the join token goes in the Authorization header
        r = c.post("/api/v1/join", json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


def node_client(server: Server, joined: dict[str, Any]) -> httpx.Client:
    return server.client(joined["credential"], timeout=70)


def status(client: httpx.Client, node: str, containers: list[dict[str, Any]] | None = None) -> None:
    body = {"node": node, "containers": containers or [], "capacity": {"cpus": 4, "memory_bytes": 8 << 30}}
    r = client.post(f"/api/v1/nodes/{node}/status", json=body)
    assert r.status_code == 200, r.text


def report_running(client: httpx.Client, node: str, health: str = "none") -> dict[str, Any]:
    """Fetch the node's state and report every container in it as running."""
    state = client.get(f"/api/v1/nodes/{node}/state").json()
    conts = [
        {"id": c["id"], "state": "running", "health": health, "ip": c["ip"]} for c in state["containers"]
    ]
    status(client, node, conts)
    return dict(state)


def put_services(server: Server, project: str, specs: dict[str, Any]) -> None:
    """Store revisions as a deploy would (bypassing Compose parsing), in one transaction."""
    from shoal.control import deploy
    from shoal.control.revision import RevisionSpec
    from shoal.control.store.db import connect

    with connect(server.dsn, autocommit=False) as conn:
        deploy.store(conn, project, {k: RevisionSpec.model_validate(v) for k, v in specs.items()})
        conn.commit()


def web_spec(name: str, replicas: int = 2, **extra: Any) -> dict[str, Any]:
    template = {"id": "", "service": name, "image": "registry:5000/web:1", **extra.pop("template", {})}
    return {"template": template, "replicas": replicas, **extra}


def tasks(server: Server, **query: str) -> list[dict[str, Any]]:
    with server.client() as c:
        return list(c.get("/api/v1/tasks", params=query).json())


def wait_for(predicate: Any, timeout: float = 15.0, what: str = "condition") -> Any:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _node(name: str) -> dict[str, object]:
    fields = {"public_key": f"pk-{name}", "endpoint": None, "labels": {}, "ingress": False}
    fields |= {"role": "worker", "capacity": {"cpus": 4, "memory_bytes": 8 << 30}}
    return {"name": name, **fields, "credential_hash": f"h-{name}", "agent_secret": "s"}


def fresh_database(postgres: Postgres, *names: str) -> str:
    """A migrated database with these nodes joined, and no server (so no controller) on it."""
    dsn = postgres.new_database()
    with connect(dsn) as conn:
        migrate(conn)
        for name in names:
            nodes.create(conn, "10.210.0.0/16", _node(name))
    return dsn


def store_service(dsn: str, name: str, replicas: int) -> None:
    """Deploy one service of web_spec's shape, as the API's deploy stores it."""
    with connect(dsn, autocommit=False) as conn:
        deploy.store(conn, "p", {name: RevisionSpec.model_validate(web_spec(name, replicas=replicas))})
        conn.commit()

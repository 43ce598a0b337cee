"""Registry logins: sealed at rest, never returned, and in the state of only the nodes that pull
from that host (a login, a change or a removal wakes exactly those)."""

from __future__ import annotations

import psycopg

from tests.integration.control.helpers import join, node_client, put_services, tasks, wait_for, web_spec
from tests.support.server_fixtures import Server

PASSWORD = "registry-hunter2"


def _state(server: Server, joined: dict, node: str) -> dict:
    with node_client(server, joined) as client:
        return dict(client.get(f"/api/v1/nodes/{node}/state").json())


def test_login_sealed_listed_without_password_and_sent_only_to_pullers(server: Server) -> None:
    a, b = join(server, "r1"), join(server, "r2")
    private = {"image": "Private.Example:5000/team/app:1"}
    put_services(
        server,
        "p",
        {
            "app": web_spec("app", replicas=1, template=private, constraints=["node.hostname==r1"]),
            "web": web_spec("web", replicas=1, constraints=["node.hostname==r2"]),
        },
    )
    wait_for(lambda: len(tasks(server)) == 2, what="placement")
    before = _state(server, a, "r1")["version"]
    with server.client() as admin:
        r = admin.post(
            "/api/v1/registries",
            json={"host": "https://PRIVATE.example:5000/", "username": "team", "password": PASSWORD},
        )
        assert r.status_code == 200, r.text
        assert r.json() == {"host": "private.example:5000", "username": "team"}
        listed = admin.get("/api/v1/registries").json()
    assert [(x["host"], x["username"]) for x in listed] == [("private.example:5000", "team")]
    assert PASSWORD not in str(listed)
    with psycopg.connect(server.dsn) as conn:
        raw = conn.execute("SELECT ciphertext FROM registry_logins").fetchone()
    assert raw is not None and PASSWORD.encode() not in bytes(raw[0])
    sa, sb = _state(server, a, "r1"), _state(server, b, "r2")
    assert sa["version"] > before  # the login woke the node that pulls from that host
    assert sa["registry_auths"] == [
        {"host": "private.example:5000", "username": "team", "password": PASSWORD}
    ]
    assert sb["registry_auths"] == []
    with server.client() as admin:
        assert admin.delete("/api/v1/registries/private.example:5000").status_code == 200
        assert admin.delete("/api/v1/registries/private.example:5000").status_code == 404
    assert _state(server, a, "r1")["registry_auths"] == []


def test_roles_and_bad_input(server: Server) -> None:
    with server.client() as admin:
        operator = admin.post("/api/v1/tokens", json={"role": "operator", "name": "o"}).json()["token"]
        bad = admin.post("/api/v1/registries", json={"host": "no spaces", "username": "u", "password": "p"})
        assert bad.status_code == 400 and "registry host" in bad.json()["error"]
        colon = admin.post(
            "/api/v1/registries", json={"host": "r.example", "username": "a:b", "password": "p"}
        )
        assert colon.status_code == 400 and "username" in colon.json()["error"]
    with server.client(operator) as op:
        assert op.get("/api/v1/registries").status_code == 200
        denied = op.post("/api/v1/registries", json={"host": "r.example", "username": "u", "password": "p"})
        assert denied.status_code == 403 and "admin" in denied.json()["error"]
        assert op.delete("/api/v1/registries/r.example").status_code == 403

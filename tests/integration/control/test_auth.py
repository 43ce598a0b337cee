"""Join tokens, node credentials' scope and people's roles against a real server and database."""

from __future__ import annotations

import httpx

from tests.integration.control.helpers import join, node_client, status
from tests.support.server_fixtures import Server, tls


def test_join_gives_credential_subnet_and_pins_ca(server: Server) -> None:
    a = join(server, "alpha")
    b = join(server, "beta")
    assert a["subnet"] != b["subnet"]
    assert a["subnet"].startswith("10.210.") and a["subnet"].endswith(".0/24")
    assert a["overlay_ip"] == a["subnet"].replace(".0/24", ".1")
    assert a["credential"] and a["agent_secret"]
    from shoal.control.pki import fingerprint

    assert server.join_token.rsplit(".", 1)[1] == fingerprint(__import__("pathlib").Path(server.ca))
    with server.client() as c:
        assert c.get("/api/v1/ca").text.startswith("-----BEGIN CERTIFICATE-----")
    again = post_join(server, server.join_token, {"name": "alpha"})
    assert again.status_code == 409


def post_join(server: Server, token: str, body: dict[str, object]) -> httpx.Response:
    with server.client(token) as c:
        return c.post("/api/v1/join", json=body)


def test_bad_and_revoked_join_tokens_are_refused(server: Server) -> None:
    bad = post_join(server, "shoal-join.nope.abc", {"name": "x1"})
    assert bad.status_code == 401 and "join token" in bad.json()["error"]
    with server.client() as c:
        made = c.post("/api/v1/join-tokens", json={"ttl_s": 60, "uses": 1}).json()
    assert post_join(server, made["token"], {"name": "x2"}).status_code == 200
    assert post_join(server, made["token"], {"name": "x3"}).status_code == 401  # used up
    with server.client() as c:
        made = c.post("/api/v1/join-tokens", json={"ttl_s": 60, "uses": 5}).json()
        assert c.delete(f"/api/v1/join-tokens/{made['id']}").status_code == 200
    assert post_join(server, made["token"], {"name": "x4"}).status_code == 401


def test_join_checks_the_header_token_before_the_body(server: Server) -> None:
    """No join token in the header (the admin's, or none): 401 however the body looks; a body
    token differing from the header's is refused."""
    assert (
        post_join(server, server.admin_token, {"token": server.join_token, "name": "x5"}).status_code == 401
    )
    with httpx.Client(base_url=server.url, verify=tls(server.ca)) as anonymous:
        refused = anonymous.post(
            "/api/v1/join", content=b"{not json", headers={"Content-Type": "application/json"}
        )
    assert refused.status_code == 401 and "Authorization" in refused.json()["error"]
    other = post_join(server, server.join_token, {"token": "shoal-join.other.abc", "name": "x6"})
    assert other.status_code == 401 and "not the one" in other.json()["error"]


def test_node_credential_reads_only_its_own_state(server: Server) -> None:
    a, b = join(server, "node-a"), join(server, "node-b")
    with node_client(server, a) as na:
        assert na.get("/api/v1/nodes/node-a/state").status_code == 200
        assert na.get("/api/v1/nodes/node-b/state").status_code == 403
        assert na.post("/api/v1/nodes/node-b/status", json={"node": "node-b"}).status_code == 403
        assert na.get("/api/v1/nodes").status_code == 403
        assert na.get("/api/v1/services").status_code == 403
        status(na, "node-a")
    with server.client() as admin:
        assert admin.get("/api/v1/nodes/node-a/state").status_code == 403
    assert b["node"] == "node-b"


def test_roles_viewer_operator_admin(server: Server) -> None:
    with server.client() as admin:
        viewer = admin.post("/api/v1/tokens", json={"role": "viewer", "name": "v"}).json()["token"]
        operator = admin.post("/api/v1/tokens", json={"role": "operator", "name": "o"}).json()["token"]
    with server.client(viewer) as v:
        assert v.get("/api/v1/services").status_code == 200
        denied = v.post("/api/v1/deploy", json={"compose": "services: {}", "project": "p"})
        assert denied.status_code == 403 and "operator" in denied.json()["error"]
        assert v.get("/api/v1/whoami").json()["role"] == "viewer"
    with server.client(operator) as o:
        assert o.post("/api/v1/tokens", json={"role": "admin"}).status_code == 403
        assert o.get("/api/v1/secrets").status_code == 403
    with server.client("shoal-api.unknown") as nobody:
        assert nobody.get("/api/v1/services").status_code == 401
    with server.client() as admin:
        tokens = admin.get("/api/v1/tokens").json()
        assert {t["role"] for t in tokens} == {"admin", "viewer", "operator"}
        assert all("hash" not in t and "token" not in t for t in tokens)


def test_bad_input_is_a_4xx_naming_the_field(server: Server) -> None:
    with server.client() as c:
        r = c.post("/api/v1/tokens", json={"role": "god"})
        assert r.status_code == 400 and r.json()["error"].startswith("role:")
        r = c.post("/api/v1/join-tokens", content=b"not json", headers={"Content-Type": "application/json"})
        assert r.status_code == 400
        assert c.get("/api/v1/events?limit=abc").status_code == 400
        assert c.get("/api/v1/nodes/nope").status_code == 404
        assert c.post("/api/v1/services/nope/scale", json={"replicas": 2}).status_code == 404
        assert c.get("/api/v1/nowhere").json()["error"]


COMPOSE = """
services:
  web:
    image: registry:5000/web:1
    deploy:
      replicas: 2
    x-shoal:
      ingress: {host: web.example, port: 8080}
"""


def test_deploy_compose_through_the_api(server: Server) -> None:
    join(server, "d1")
    with server.client() as c:
        r = c.post("/api/v1/deploy", json={"compose": COMPOSE, "project": "demo"})
        assert r.status_code == 200, r.text
        assert r.json()["services"] == [{"name": "web", "revision": 1}]
        same = c.post("/api/v1/deploy", json={"compose": COMPOSE, "project": "demo"}).json()
        assert same["services"] == [{"name": "web", "revision": 1}]
        changed = COMPOSE.replace("web:1", "web:2")
        assert (
            c.post("/api/v1/deploy", json={"compose": changed, "project": "demo"}).json()["services"][0][
                "revision"
            ]
            == 2
        )
        svc = c.get("/api/v1/services/web").json()
        assert svc["image"] == "registry:5000/web:2" and svc["ingress"]["host"] == "web.example"
        assert "web:1" in svc["revisions"][1]["change"]
        bad = c.post(
            "/api/v1/deploy", json={"compose": COMPOSE.replace("replicas", "replicaz"), "project": "demo"}
        )
        assert bad.status_code == 400 and "replicaz" in bad.json()["error"] and "line" in bad.json()["error"]
        assert c.post("/api/v1/services/web/scale", json={"replicas": 3}).json()["replicas"] == 3
        assert c.post("/api/v1/services/web/rollback").json()["revision"] == 1
        assert c.delete("/api/v1/services/web").status_code == 200
        assert c.get("/api/v1/services/web").status_code == 404

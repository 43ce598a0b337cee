"""What a node gets at join comes from its join token, never from the node (issue 18): labels and
the ingress flag a join request asks for are ignored (one log line says so), a token made with
them gives them; a public node relays only when an admin marked it (token `--relay` or
`POST /nodes/N/relay`), and migration 13 marks the public nodes of an upgraded cluster."""

from __future__ import annotations

import re
from typing import Any

from shoal.control.store.db import connect
from shoal.control.store.migrate import current_version, migrate, migrations
from tests.integration.control.helpers import join, node_client, wait_for
from tests.support.server_fixtures import Postgres, Server, ServerFactory


def _join_token(srv: Server, **grants: Any) -> str:
    with srv.client() as admin:
        r = admin.post("/api/v1/join-tokens", json={"uses": 5, **grants})
        assert r.status_code == 200, r.text
        return str(r.json()["token"])


def _node(server: Server, name: str) -> dict[str, Any]:
    with server.client() as admin:
        got: dict[str, Any] = admin.get(f"/api/v1/nodes/{name}").json()
        return got


def _relays_seen(server: Server, joined: dict[str, Any], name: str) -> list[str]:
    with node_client(server, joined) as client:
        relays: list[str] = client.get(f"/api/v1/nodes/{name}/state").json()["relays"]
        return relays


def test_a_join_request_cannot_choose_its_labels_or_ingress(server: Server) -> None:
    joined = join(server, "jg-asks", labels={"role": "db"}, ingress=True)
    node = _node(server, "jg-asks")
    assert node["labels"] == {} and node["ingress"] is False and node["is_relay"] is False
    assert joined["labels"] == {} and joined["ingress"] is False
    logged = [line for line in server.log.read_text().splitlines() if "join of node jg-asks" in line]
    assert len(logged) == 1 and "role=db, ingress; ignored" in logged[0], logged


def test_a_join_token_gives_its_labels_and_ingress(server: Server) -> None:
    token = _join_token(server, labels={"role": "db"}, ingress=True)
    with server.client() as admin:
        said = [e["message"] for e in admin.get("/api/v1/events").json() if e["kind"] == "token.created"]
    assert said[-1].endswith("created, granting role=db, ingress"), said
    joined = join(server, "jg-given", token=token)
    node = _node(server, "jg-given")
    assert node["labels"] == {"role": "db"} and node["ingress"] is True
    assert joined["labels"] == {"role": "db"} and joined["ingress"] is True
    asking = join(server, "jg-other", token=token, labels={"zone": "a"})  # no more than the token
    assert asking["labels"] == {"role": "db"} and _node(server, "jg-other")["labels"] == {"role": "db"}


def test_only_nodes_an_admin_marked_relay(server: Server) -> None:
    join(server, "rm-plain", endpoint="192.0.2.1:51820")
    join(server, "rm-marked", endpoint="192.0.2.2:51820", token=_join_token(server, relay=True))
    home = join(server, "rm-home1", endpoint=None)
    join(server, "rm-home2", endpoint=None)
    wait_for(lambda: _relays_seen(server, home, "rm-home1") == ["rm-marked"], what="the marked relay only")
    assert _node(server, "rm-marked")["is_relay"] and not _node(server, "rm-plain")["is_relay"]
    with server.client() as admin:
        r = admin.post("/api/v1/nodes/rm-plain/relay", json={"relay": True})
        assert r.status_code == 200 and r.json()["is_relay"] is True, r.text
        admin.post("/api/v1/nodes/rm-marked/labels", json={"labels": {"shoal.relay": "false"}})
    wait_for(lambda: _relays_seen(server, home, "rm-home1") == ["rm-plain"], what="the newly marked relay")
    assert _node(server, "rm-marked")["is_relay"] is False  # `shoal.relay=false`: never
    with server.client() as admin:
        r = admin.post("/api/v1/nodes/rm-plain/relay", json={"relay": False})
        assert r.status_code == 200 and r.json()["is_relay"] is False, r.text
    wait_for(lambda: _relays_seen(server, home, "rm-home1") == [], what="no relay left")


def _nodes_page(server: Server) -> str:
    """The web UI's nodes table, signed in with the admin token."""
    with server.client() as browser:
        form = browser.get("/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert csrf is not None, form
        browser.post("/login", data={"token": server.admin_token, "csrf_token": csrf.group(1)})
        return browser.get("/fragments/nodes").text


def test_the_web_ui_shows_which_nodes_relay(server: Server) -> None:
    join(server, "ui-relay", token=_join_token(server, relay=True))
    join(server, "ui-plain")
    rows = {row.split("</a>")[0].rsplit(">", 1)[-1]: row for row in _nodes_page(server).split("<tr>")[2:]}
    assert 'badge">relay' in rows["ui-relay"] and 'badge">relay' not in rows["ui-plain"]


def _ingress_settings(server: Server, joined: dict[str, Any], name: str) -> object:
    with node_client(server, joined) as client:
        return client.get(f"/api/v1/nodes/{name}/state").json().get("ingress_settings")


def test_an_admin_turns_a_nodes_ingress_on_and_off(server: Server) -> None:
    joined = join(server, "ig-node")
    assert _ingress_settings(server, joined, "ig-node") is None
    with server.client() as admin:
        r = admin.post("/api/v1/nodes/ig-node/ingress", json={"ingress": True})
        assert r.status_code == 200 and r.json()["ingress"] is True, r.text
    assert _ingress_settings(server, joined, "ig-node") is not None
    with server.client() as admin:
        assert admin.post("/api/v1/nodes/ig-node/ingress", json={"ingress": False}).json()["ingress"] is False
        assert admin.post("/api/v1/nodes/ig-nope/ingress", json={"ingress": True}).status_code == 404
    assert _ingress_settings(server, joined, "ig-node") is None


def _insert_node(conn: Any, index: int, name: str, endpoint: str | None, labels: str) -> None:
    conn.execute(
        "INSERT INTO nodes (name, subnet_index, subnet, endpoint, labels, credential_hash, agent_secret)"
        " VALUES (%s, %s, %s, %s, %s::jsonb, %s, 's')",
        (name, index, f"10.210.{index}.0/24", endpoint, labels, f"h-{name}"),
    )


def test_migration_13_keeps_an_upgraded_cluster_relaying(postgres: Postgres) -> None:
    dsn = postgres.new_database()
    with connect(dsn) as conn:
        current_version(conn)  # makes the schema_version table
        for version, sql in migrations():
            if version < 13:
                conn.execute(sql.encode())
                conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
        _insert_node(conn, 1, "pub", "192.0.2.1:51820", "{}")
        _insert_node(conn, 2, "barred", "192.0.2.2:51820", '{"shoal.relay": "false"}')
        _insert_node(conn, 3, "home", None, "{}")
        assert migrate(conn) >= 13
        rows = conn.execute("SELECT name, relay FROM nodes ORDER BY name").fetchall()
        assert {r["name"]: r["relay"] for r in rows} == {"barred": False, "home": False, "pub": True}


def test_the_servers_machine_name_needs_a_token_granting_it(server_factory: ServerFactory) -> None:
    """`server init --server-node vm1`: a join token an operator could pass around does not make
    its holder the server's machine (the role, and the address every agent reaches the server
    at); `server init`'s own token does, and a token an admin made with `server` does."""
    srv = server_factory("--server-node", "vm1")
    plain = _join_token(srv, uses=1)
    with srv.client(plain) as c:
        refused = c.post(
            "/api/v1/join", json={"name": "vm1", "public_key": "k1", "endpoint": "192.0.2.9:51820"}
        )
    assert refused.status_code == 403 and "server's own machine" in refused.json()["error"], refused.text
    join(srv, "w1", token=plain)  # the refusal did not spend the token's one use
    assert _node(srv, "w1")["role"] == "worker"
    join(srv, "vm1")  # server init's token
    assert _node(srv, "vm1")["role"] == "server"
    other = server_factory("--server-node", "vm1")
    join(other, "vm1", token=_join_token(other, server=True))
    assert _node(other, "vm1")["role"] == "server"

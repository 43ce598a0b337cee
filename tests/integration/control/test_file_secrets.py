"""Compose secrets with `file:` against a real server: the deploy stores them as the project's own,
the node that runs the service gets the value, and the same file deployed again writes nothing."""

from __future__ import annotations

import base64

from tests.integration.control.helpers import join, node_client, tasks, wait_for
from tests.support.server_fixtures import Server

COMPOSE = """services:
  db:
    image: registry.shx:5000/db:1
    secrets: [pw]
secrets:
  pw: {file: ./pw.txt}
"""


def _deploy(server: Server, value: bytes) -> None:
    body = {"compose": COMPOSE, "project": "fs", "files": {"./pw.txt": base64.b64encode(value).decode()}}
    with server.client() as admin:
        got = admin.post("/api/v1/deploy", json=body)
    assert got.status_code == 200, got.text


def _created(server: Server) -> str:
    with server.client() as admin:
        return str(admin.get("/api/v1/secrets").json()[0]["created"])


def test_a_file_secret_is_stored_for_its_project_and_reaches_the_node(server: Server) -> None:
    node = join(server, "fs1")
    _deploy(server, b"from-the-file\n")
    wait_for(lambda: tasks(server), what="placement")
    with server.client() as admin:
        listed = [(s["project"], s["name"]) for s in admin.get("/api/v1/secrets").json()]
    assert listed == [("fs", "fs_pw")]
    created = _created(server)
    with node_client(server, node) as n:
        state = n.get("/api/v1/nodes/fs1/state").json()
        [secret] = state["secrets"]
        assert base64.b64decode(secret["value_b64"]) == b"from-the-file\n"
        version = state["version"]
        _deploy(server, b"from-the-file\n")  # the same value: the secret is not written again
        assert _created(server) == created
        _deploy(server, b"changed\n")
        again = n.get("/api/v1/nodes/fs1/state", params={"since": version, "wait": 5}).json()
    assert base64.b64decode(again["secrets"][0]["value_b64"]) == b"changed\n"

"""Secrets scoped to projects, against a real server and a scripted node: `shoal secret create -p`,
a service gets its own project's secret (never another project's of the same name), an operator
may not use a global secret unless the node policy grants it, an admin may as before."""

from __future__ import annotations

import base64
import json
import re
import ssl
from pathlib import Path

import httpx

from tests.integration.cli.conftest import ScriptedNode, Shoal, wait_until
from tests.support.server_fixtures import Server

COMPOSE = """services:
  app:
    image: registry.shx:5000/app:1
    secrets: [{name}]
secrets:
  {name}: {{external: true}}
"""


def _operator(shoal: Shoal) -> str:
    made = shoal("token", "create", "--role", "operator", "--name", "shx-op", "-o", "json")
    return str(json.loads(made.stdout)["token"])


def _deploy(shoal: Shoal, tmp_path: Path, project: str, secret: str, token: str = "") -> tuple[int, str]:
    path = tmp_path / f"{project}.yaml"
    path.write_text(COMPOSE.format(name=secret))
    env = {"SHOAL_TOKEN": token} if token else {}
    got = shoal("deploy", "-f", str(path), "-p", project, "--detach", **env)
    return got.exit_code, got.stderr


def _sent(node: ScriptedNode) -> dict[str, str]:
    """The secrets the node's state carries, by key."""
    return {s.name: base64.b64decode(s.value_b64).decode() for s in node.state().secrets}


def _mounted(node: ScriptedNode, project: str) -> list[str]:
    return [
        m.source
        for c in node.state().containers
        if c.project == project
        for m in c.mounts
        if m.kind == "secret"
    ]


def test_secrets_are_listed_and_removed_per_project(shoal: Shoal) -> None:
    assert shoal("secret", "create", "api-key", "-p", "shx", input="shx-value").stdout.strip() == (
        "stored secret api-key in project shx"
    )
    assert shoal("secret", "create", "api-key", input="global-value").exit_code == 0
    listed = json.loads(shoal("secret", "ls", "-o", "json").stdout)
    assert [(s["name"], s["project"]) for s in listed] == [("api-key", ""), ("api-key", "shx")]
    assert "(global)" in shoal("secret", "ls").stdout
    assert shoal("secret", "rm", "api-key", "-p", "shx").exit_code == 0
    assert [s["project"] for s in json.loads(shoal("secret", "ls", "-o", "json").stdout)] == [""]
    gone = shoal("secret", "rm", "api-key", "-p", "shx")
    assert gone.exit_code == 1 and "secret api-key in project shx not found" in gone.stderr


def test_a_service_gets_its_own_projects_secret_only(
    shoal: Shoal, node: ScriptedNode, tmp_path: Path
) -> None:
    shoal("secret", "create", "api-key", "-p", "shxa", input="value-of-a")
    token = _operator(shoal)
    assert _deploy(shoal, tmp_path, "shxa", "api-key", token) == (0, "")
    assert _deploy(shoal, tmp_path, "shxb", "api-key", token) == (0, "")  # b has none of its own
    wait_until(lambda: _mounted(node, "shxa") and _mounted(node, "shxb"), what="both placed")
    assert _mounted(node, "shxa") == ["shxa:api-key"] and _mounted(node, "shxb") == ["shxb:api-key"]
    assert _sent(node) == {"shxa:api-key": "value-of-a"}  # b's replica never gets a's value


def test_an_operator_needs_the_policy_for_a_global_secret(
    shoal: Shoal, node: ScriptedNode, tmp_path: Path
) -> None:
    shoal("secret", "create", "db-pass", input="global-db")
    token = _operator(shoal)
    code, error = _deploy(shoal, tmp_path, "shxo", "db-pass", token)
    assert code == 1 and len(error.splitlines()) == 1
    assert "secret db-pass is global: operator tokens may use only project shxo's own secrets" in error
    assert "secrets: [db-pass]" in error
    assert _deploy(shoal, tmp_path, "shxadm", "db-pass") == (0, "")  # an admin may, as before
    wait_until(lambda: _mounted(node, "shxadm"), what="the admin's service placed")
    assert _mounted(node, "shxadm") == ["db-pass"] and _sent(node) == {"db-pass": "global-db"}
    policy = tmp_path / "policy.yaml"
    policy.write_text("grants:\n  - roles: [operator]\n    secrets: [db-pass]\n")
    assert shoal("policy", "set", "-f", str(policy)).exit_code == 0
    assert _deploy(shoal, tmp_path, "shxo", "db-pass", token) == (0, "")


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def test_the_ui_creates_lists_and_deletes_a_projects_secret(server: Server) -> None:
    with httpx.Client(base_url=server.url, verify=ssl.create_default_context(cafile=server.ca)) as web:
        web.post("/login", data={"token": server.admin_token, "csrf_token": _csrf(web.get("/login").text)})
        form = {"name": "ui-key", "value": "ui-value", "project": "shxui"}
        web.post("/secrets", data={**form, "csrf_token": _csrf(web.get("/secrets").text)})
        page = web.get("/secrets").text
        assert "<td>ui-key</td><td>shxui</td>" in page and "ui-value" not in page
        deleted = {"project": "shxui", "csrf_token": _csrf(page)}
        web.post("/secrets/ui-key/delete", data=deleted)
        assert "<td>ui-key</td>" not in web.get("/secrets").text

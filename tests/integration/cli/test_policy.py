"""The node policy against a real server: `shoal policy set|show|history`, and deploys (and dry
runs) refused with a 403 naming key, line and policy entry, or accepted once the policy grants."""

from __future__ import annotations

import json
import re
import ssl
from pathlib import Path

import httpx
import pytest

from shoal.client import Client
from shoal.client.errors import ForbiddenError
from shoal.errors import ShoalError
from tests.integration.cli.conftest import ScriptedNode, Shoal
from tests.support.server_fixtures import Server

POLICY = """\
grants:
  - name: admins
    roles: [admin]
    privileged: true
    binds:
      - {path: /srv/shx-data, mode: rw}
"""


def operator(shoal: Shoal) -> str:
    made = shoal("token", "create", "--role", "operator", "-o", "json")
    assert made.exit_code == 0, made.stderr
    return str(json.loads(made.stdout)["token"])


def compose(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "compose.yaml"
    path.write_text(f"services:\n  web:\n    image: app:1\n{extra}")
    return path


@pytest.mark.parametrize(
    ("extra", "fault"),
    [
        ("    volumes: ['/:/host']\n", "services.web.volumes[0]: bind of / is never allowed"),
        ("    volumes: ['/var/lib/shoal/server:/x']\n", "exposes /var/lib/shoal (no policy can grant it)"),
        ("    privileged: true\n", "services.web.privileged: refused by the node policy (an admin grants it"
         " to role operator or project shx with `privileged: true` in a grant) (line 4)"),
        ("    volumes: ['/srv/shx-data/a:/a']\n", "bind of /srv/shx-data/a refused by the node policy"),
    ],
)  # fmt: skip
def test_operator_deploy_refused_403_one_line(shoal: Shoal, tmp_path: Path, extra: str, fault: str) -> None:
    assert shoal("policy", "set", "-f", _write(tmp_path, POLICY)).exit_code == 0
    path = compose(tmp_path, extra)
    token = operator(shoal)
    for flags in (["--dry-run"], ["--detach"]):  # a dry run answers the same
        got = shoal("deploy", "-f", str(path), "--project", "shx", *flags, SHOAL_TOKEN=token)
        assert got.exit_code == 1 and len(got.stderr.splitlines()) == 1, got.stderr
        assert fault in got.stderr and "(line 4)" in got.stderr, got.stderr
    assert json.loads(shoal("service", "ls", "-o", "json").stdout) == []  # nothing stored


def test_the_api_answers_403(server: Server, shoal: Shoal, tmp_path: Path) -> None:
    token = operator(shoal)
    with Client(server.url, token, Path(server.ca)) as api, pytest.raises(ForbiddenError, match="privileged"):
        api.deploy("services:\n  web:\n    image: app:1\n    privileged: true\n", "shx", dry_run=True)


def test_admin_deploys_what_the_policy_grants(shoal: Shoal, tmp_path: Path, server: Server) -> None:
    path = compose(tmp_path, "    privileged: true\n    volumes: ['/srv/shx-data/a/../b/:/b']\n")
    before = shoal("deploy", "-f", str(path), "--project", "shx", "--detach")
    assert before.exit_code == 1 and "privileged" in before.stderr  # no policy yet: admins too
    assert shoal("policy", "set", "-f", _write(tmp_path, POLICY)).exit_code == 0
    got = shoal("deploy", "-f", str(path), "--project", "shx", "--detach")
    assert got.exit_code == 0, got.stderr
    data_dir = compose(tmp_path, f"    volumes: ['{server.data_dir}:/x']\n")  # the configured one
    refused = shoal("deploy", "-f", str(data_dir), "--project", "shx", "--detach")
    assert refused.exit_code == 1 and "is never allowed" in refused.stderr, refused.stderr
    rw_root = compose(tmp_path, "    volumes: ['/srv:/x:ro']\n")  # a parent of the prefix: not granted
    assert "refused by the node policy" in shoal("deploy", "-f", str(rw_root), "--detach", "-p", "shx").stderr


def test_policy_set_show_and_versions(shoal: Shoal, tmp_path: Path) -> None:
    empty = json.loads(shoal("policy", "show", "-o", "json").stdout)
    assert empty["version"] == 0 and empty["document"] == ""
    set1 = shoal("policy", "set", "-f", _write(tmp_path, POLICY))
    assert set1.exit_code == 0 and set1.stdout.strip() == "node policy version 1 set", set1.stderr
    set2 = shoal("policy", "set", "-f", _write(tmp_path, "metadata: true\n"), "-o", "json")
    assert json.loads(set2.stdout) == {"version": 2}
    shown = shoal("policy", "show")
    assert shown.stdout == "# node policy version 2\nmetadata: true\n"
    history = json.loads(shoal("policy", "history", "-o", "json").stdout)
    assert [v["version"] for v in history] == [2, 1] and history[1]["document"] == POLICY


def test_bad_policy_is_refused_with_key_and_line(shoal: Shoal, server: Server, tmp_path: Path) -> None:
    text = "grants:\n  - roles: [admin]\n    priviledged: true\n"
    fault = "grants[0].priviledged: unknown key; did you mean `privileged`? (line 3)"
    got = shoal("policy", "set", "-f", _write(tmp_path, text))
    assert got.exit_code == 1 and got.stderr == f"error: {tmp_path / 'policy.yaml'}: {fault}\n"
    api = Client(server.url, server.admin_token, Path(server.ca))
    with api, pytest.raises(ShoalError) as caught:  # the server checks too
        api.set_policy(text)
    assert str(caught.value) == f"policy: {fault}"
    assert json.loads(shoal("policy", "show", "-o", "json").stdout)["version"] == 0  # nothing stored


def test_only_admins_see_or_set_the_policy(shoal: Shoal, tmp_path: Path) -> None:
    token = operator(shoal)
    for args in (["policy", "show"], ["policy", "set", "-f", _write(tmp_path, "metadata: true\n")]):
        got = shoal(*args, SHOAL_TOKEN=token)
        assert got.exit_code == 1 and "needs the admin role" in got.stderr


def test_metadata_reaches_the_node_state(shoal: Shoal, tmp_path: Path, node: ScriptedNode) -> None:

    assert node.state().metadata_access is False
    assert shoal("policy", "set", "-f", _write(tmp_path, "metadata: true\n")).exit_code == 0
    assert node.state().metadata_access is True


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return str(path)


def test_the_ui_shows_the_policy_to_admins_read_only(server: Server, shoal: Shoal, tmp_path: Path) -> None:
    assert shoal("policy", "set", "-f", _write(tmp_path, POLICY)).exit_code == 0
    operator_token = operator(shoal)

    def page(token: str) -> httpx.Response:
        with httpx.Client(base_url=server.url, verify=ssl.create_default_context(cafile=server.ca)) as web:
            login = web.get("/login").text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', login)
            assert csrf is not None
            web.post("/login", data={"token": token, "csrf_token": csrf.group(1)})
            return web.get("/policy")

    shown = page(server.admin_token)
    assert shown.status_code == 200 and "Version 1" in shown.text and "/srv/shx-data" in shown.text
    assert "<form" not in shown.text.split("<h1>Node policy</h1>")[1]  # read-only
    refused = page(operator_token)
    assert refused.status_code == 302 and "/srv/shx-data" not in refused.text  # sent away, nothing shown

"""The CLI against a real server: tokens, login and contexts, and one-line errors (bad token, down)."""

from __future__ import annotations

import json
import ssl
import stat
from pathlib import Path

import httpx
from click.testing import CliRunner

from shoal.cli.main import cli
from shoal.client.contexts import ContextStore
from tests.integration.cli.conftest import Shoal, wait_until
from tests.support.server_fixtures import Server


def test_token_create_ls_rm(shoal: Shoal) -> None:
    made = shoal("token", "create", "--role", "viewer", "--name", "shx-ci", "--output", "json")
    assert made.exit_code == 0, made.stderr
    token = json.loads(made.stdout)
    assert set(token) == {"id", "role", "token"} and token["role"] == "viewer"
    listed = json.loads(shoal("token", "ls", "-o", "json").stdout)
    assert {"id": token["id"], "name": "shx-ci", "role": "viewer"}.items() <= next(
        t for t in listed if t["id"] == token["id"]
    ).items()
    assert token["token"] not in shoal("token", "ls").stdout
    assert shoal("node", "ls", SHOAL_TOKEN=token["token"]).exit_code == 0
    denied = shoal("token", "ls", SHOAL_TOKEN=token["token"])
    assert (
        denied.exit_code == 1 and len(denied.stderr.splitlines()) == 1 and denied.stderr.startswith("error: ")
    )
    assert shoal("token", "rm", token["id"]).stdout.strip() == f"removed token {token['id']}"
    # the server caches a token's role for a few seconds: a revoked one stops working soon after
    wait_until(
        lambda: shoal("node", "ls", SHOAL_TOKEN=token["token"]).exit_code == 1, timeout=10, what="revocation"
    )
    gone = shoal("node", "ls", SHOAL_TOKEN=token["token"])
    assert gone.exit_code == 1 and gone.stderr == "error: unknown token\n"


def test_token_create_table_prints_secret_once(shoal: Shoal) -> None:
    made = shoal("token", "create", "--role", "operator")
    assert made.exit_code == 0
    secret = made.stdout.strip()
    assert secret and "\n" not in secret and "not shown again" in made.stderr
    assert shoal("ps", SHOAL_TOKEN=secret).exit_code == 0


def test_token_create_join_makes_a_join_token(shoal: Shoal, server: Server) -> None:
    """`shoal token create --role join` (docs/install.md) makes a join token with its uses and TTL."""
    made = shoal("token", "create", "--role", "join", "--ttl", "2h", "--uses", "3", "--output", "json")
    assert made.exit_code == 0, made.stderr
    token = json.loads(made.stdout)
    assert token["role"] == "join" and token["token"].startswith("shoal-join.")
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    listed = httpx.get(
        f"{server.url}/api/v1/join-tokens",
        headers=headers,
        verify=ssl.create_default_context(cafile=server.ca),
    ).json()
    assert next(t for t in listed if t["id"] == token["id"])["uses_left"] == 3
    bad = shoal("token", "create", "--role", "join", "--ttl", "forever")
    assert bad.exit_code == 2 and "--ttl" in bad.stderr


def test_bad_token_is_one_line_exit_1(shoal: Shoal) -> None:
    got = shoal("node", "ls", SHOAL_TOKEN="not-a-token")
    assert got.exit_code == 1
    assert got.stderr == "error: unknown token\n" and got.stdout == ""


def test_server_down_is_one_line(server: Server, shoal: Shoal) -> None:
    server.kill()
    got = shoal("ps", "--output", "json")
    assert got.exit_code == 1
    assert got.stderr.startswith(f"error: cannot reach server at {server.url}: ")
    assert len(got.stderr.splitlines()) == 1 and "Traceback" not in got.output


def test_wrong_ca_is_one_line_with_a_hint(server: Server, shoal: Shoal, home: Path) -> None:
    got = shoal("node", "ls", SHOAL_CACERT="")
    assert got.exit_code == 1
    assert "TLS certificate not trusted" in got.stderr and "SHOAL_CACERT" in got.stderr
    assert len(got.stderr.splitlines()) == 1


def test_login_pins_ca_and_stores_context(server: Server, home: Path) -> None:
    runner = CliRunner()
    got = runner.invoke(
        cli, ["login", server.url, "--token", server.admin_token, "--ca", server.ca, "--name", "shx"]
    )
    assert got.exit_code == 0, got.stderr
    assert got.stdout.strip() == f"logged in to {server.url} as admin (context shx)"
    store = ContextStore()
    entry = store.load().contexts["shx"]
    assert Path(entry.ca or "").read_bytes() == Path(server.ca).read_bytes()
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert runner.invoke(cli, ["node", "ls", "-o", "json"]).stdout.strip() == "[]"


def test_login_by_fingerprint_and_by_confirmation(server: Server, home: Path) -> None:
    runner = CliRunner()
    fingerprint = server.join_token.rsplit(".", 1)[1]
    by_fp = runner.invoke(
        cli, ["login", server.url, "--token", server.admin_token, "--fingerprint", fingerprint]
    )
    assert by_fp.exit_code == 0, by_fp.stderr
    wrong = runner.invoke(
        cli, ["login", server.url, "--token", server.admin_token, "--fingerprint", "00" * 32]
    )
    assert wrong.exit_code == 1 and "expected 0000" in wrong.stderr
    declined = runner.invoke(
        cli, ["login", server.url, "--token", server.admin_token, "--name", "x"], input="n\n"
    )
    assert declined.exit_code == 1 and fingerprint in declined.stderr
    accepted = runner.invoke(
        cli, ["login", server.url, "--token", server.admin_token, "--name", "y"], input="y\n"
    )
    assert accepted.exit_code == 0
    assert set(ContextStore().load().contexts) == {"127.0.0.1-" + server.url.rsplit(":", 1)[1], "y"}


def test_login_with_bad_token_stores_nothing(server: Server, home: Path) -> None:
    got = CliRunner().invoke(cli, ["login", server.url, "--token", "nope", "--ca", server.ca])
    assert got.exit_code == 1 and got.stderr == "error: unknown token\n"
    assert not ContextStore().path.exists()


def test_contexts_switch_between_clusters(server: Server, home: Path) -> None:
    runner = CliRunner()
    store = ContextStore()
    store.put("other", "https://127.0.0.1:9", "t", None)
    runner.invoke(
        cli, ["login", server.url, "--token", server.admin_token, "--ca", server.ca, "--name", "real"]
    )
    listed = json.loads(runner.invoke(cli, ["context", "ls", "-o", "json"]).stdout)
    assert [(c["name"], c["current"]) for c in listed] == [("other", False), ("real", True)]
    assert runner.invoke(cli, ["context", "use", "other"]).exit_code == 0
    assert "cannot reach server at https://127.0.0.1:9" in runner.invoke(cli, ["ps"]).stderr
    assert runner.invoke(cli, ["ps"], env={"SHOAL_CONTEXT": "real"}).exit_code == 0

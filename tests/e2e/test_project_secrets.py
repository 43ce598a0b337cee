"""Project secrets on the sandbox, as an operator: a service reads its own project's secret; a
service of another project naming the same secret never gets it (its replica fails saying the
secret was not sent); a global secret is refused (403, one line); a viewer's `service inspect`
shows environment names without values. Secrets and projects are removed at the end.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import SHOAL, Sandbox, wait_for

COMPOSE = """services:
  reader:
    image: {image}
    command: [sleep, '3600']
    environment: {{API_PASSWORD: hunter2-e2e}}
    secrets: [token]
    deploy: {{placement: {{constraints: ["node.hostname == n1"]}}}}
secrets:
  token: {{external: true}}
"""


def _as(cluster: Sandbox, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**cluster.env, "SHOAL_TOKEN": token}
    return subprocess.run([*SHOAL, *args], capture_output=True, text=True, check=False, timeout=120, env=env)


@pytest.fixture(scope="module")
def tokens(cluster: Sandbox) -> Iterator[dict[str, str]]:
    made = {
        r: cluster.shoal_json("token", "create", "--role", r, "--name", f"e2e-sec-{r}")
        for r in ("operator", "viewer")
    }
    try:
        yield {role: str(m["token"]) for role, m in made.items()}
    finally:
        for m in made.values():
            cluster.shoal("token", "rm", str(m["id"]))


def _deploy(cluster: Sandbox, token: str, project: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    path = tmp / f"{project}.yaml"
    path.write_text(COMPOSE.format(image=f"{cluster.status['registry']}/example/hello:latest"))
    return _as(cluster, token, "deploy", "-f", str(path), "-p", project, "--detach")


def _row(cluster: Sandbox, project: str) -> dict[str, Any]:
    return next((r for r in cluster.shoal_json("ps") if r.get("project") == project), {})


def _read(cluster: Sandbox, token: str, project: str) -> str:
    got = _as(cluster, token, "service", "exec", "reader", "-p", project, "--", "cat", "/run/secrets/token")
    return got.stdout.strip() if got.returncode == 0 else ""


def _create(cluster: Sandbox, value: str, *flags: str) -> subprocess.CompletedProcess[str]:
    argv = [*SHOAL, "secret", "create", "token", *flags]
    return subprocess.run(argv, input=value, text=True, capture_output=True, check=False, env=cluster.env)


def test_secrets_stay_in_their_project(cluster: Sandbox, tokens: dict[str, str], tmp_path: Path) -> None:
    operator = tokens["operator"]
    created = _create(cluster, "value-of-pa", "-p", "secpa")
    assert created.returncode == 0, created.stderr
    try:
        assert _deploy(cluster, operator, "secpa", tmp_path).returncode == 0
        assert _deploy(cluster, operator, "secpb", tmp_path).returncode == 0
        wait_for(lambda: _read(cluster, operator, "secpa") == "value-of-pa", 180, "pa reads its own secret")
        wait_for(
            lambda: "secret 'secpb:token' was not sent" in str(_row(cluster, "secpb").get("message")),
            120,
            "pb's replica refused pa's secret",
        )
        assert _read(cluster, operator, "secpb") == ""
        assert _create(cluster, "global-value").returncode == 0  # now a global one of that name too
        refused = _deploy(cluster, operator, "secpc", tmp_path)
        assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1, refused.stderr
        assert "secret token is global" in refused.stderr
        seen = _as(
            cluster, tokens["viewer"], "service", "inspect", "reader", "-p", "secpa", "--output", "json"
        )
        assert seen.returncode == 0, seen.stderr
        assert json.loads(seen.stdout)["spec"]["environment"] == {"API_PASSWORD": "(redacted)"}
        assert "hunter2" not in seen.stdout
    finally:
        for project in ("secpa", "secpb", "secpc"):
            cluster.shoal("project", "rm", project)
        cluster.shoal("secret", "rm", "token", "-p", "secpa")
        cluster.shoal("secret", "rm", "token")

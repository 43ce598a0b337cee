"""A viewer token sees a service's environment names but not their values (API, and so the UI):
in `service inspect`'s spec and in each revision's change line. Operators and admins see them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.integration.cli.conftest import Shoal

COMPOSE = """services:
  app:
    image: registry.shx:5000/app:1
    environment:
      DB_PASSWORD: {password}
      MODE: prod
"""


def _deploy(shoal: Shoal, tmp_path: Path, password: str) -> None:
    path = tmp_path / "compose.yaml"
    path.write_text(COMPOSE.format(password=password))
    got = shoal("deploy", "-f", str(path), "-p", "shx", "--detach")
    assert got.exit_code == 0, got.stderr


def _token(shoal: Shoal, role: str) -> str:
    made = json.loads(shoal("token", "create", "--role", role, "--name", f"shx-{role}", "-o", "json").stdout)
    return str(made["token"])


def _inspect(shoal: Shoal, token: str) -> dict[str, Any]:
    got = shoal("service", "inspect", "app", "-p", "shx", "-o", "json", SHOAL_TOKEN=token)
    assert got.exit_code == 0, got.stderr
    return dict(json.loads(got.stdout))


def test_a_viewer_sees_environment_names_not_values(shoal: Shoal, tmp_path: Path) -> None:
    _deploy(shoal, tmp_path, "hunter2-first")
    _deploy(shoal, tmp_path, "hunter2-second")
    seen = _inspect(shoal, _token(shoal, "viewer"))
    assert seen["spec"]["environment"] == {"DB_PASSWORD": "(redacted)", "MODE": "(redacted)"}
    changes = [r["change"] for r in seen["revisions"]]
    assert "environment.DB_PASSWORD: (redacted)" in changes
    assert "hunter2" not in json.dumps(seen)
    table = shoal("service", "inspect", "app", "-p", "shx", SHOAL_TOKEN=_token(shoal, "viewer"))
    assert "hunter2" not in table.stdout
    operator = _inspect(shoal, _token(shoal, "operator"))
    assert operator["spec"]["environment"]["DB_PASSWORD"] == "hunter2-second"
    stored = [r["change"] for r in operator["revisions"]]  # the change line never holds the values
    assert "environment.DB_PASSWORD: (redacted) → (redacted)" in stored
    assert _inspect(shoal, shoal.env["SHOAL_TOKEN"])["spec"]["environment"]["MODE"] == "prod"

"""The agent endpoints' pure parts: bearer auth, since/tail parsing, request validation."""

from __future__ import annotations

import pytest
from werkzeug.test import Client

from shoal.agent.httpd import authorized, create_app, parse_since, parse_tail


def test_authorized_needs_the_exact_secret() -> None:
    assert authorized("Bearer s3cret", "s3cret")
    assert authorized("bearer s3cret", "s3cret")
    assert not authorized("Bearer wrong", "s3cret")
    assert not authorized(None, "s3cret")
    assert not authorized("Bearer ", "")  # no secret configured: nobody


def test_parse_since() -> None:
    assert parse_since(None) is None
    assert parse_since("1700000000.5") == 1700000000.5
    assert parse_since("2023-11-14T22:13:20Z") == 1700000000.0
    with pytest.raises(ValueError):
        parse_since("yesterday")


def test_parse_tail() -> None:
    assert parse_tail(None) is None
    assert parse_tail("all") is None
    assert parse_tail("20") == 20
    with pytest.raises(ValueError):
        parse_tail("-5")


def test_endpoints_refuse_without_secret_and_validate_exec() -> None:
    app = create_app(containers=None, secret="s3cret", metrics=lambda: b"m 1\n")  # type: ignore[arg-type]
    client = Client(app)
    assert client.get("/metrics").status_code == 401
    ok = client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert (ok.status_code, ok.data) == (200, b"m 1\n")
    bad = client.post(
        "/agent/v1/containers/x/exec", json={"cmd": "sh"}, headers={"Authorization": "Bearer s3cret"}
    )
    assert bad.status_code == 400
    assert "cmd" in bad.get_json()["error"]

"""The agent's WSGI app without Flask: routing answers as Flask's did, behind the secret."""

from __future__ import annotations

from werkzeug.test import Client

from shoal.agent.httpd import create_app

AUTH = {"Authorization": "Bearer s3cret"}


def test_unknown_path_and_wrong_method_are_json_errors_after_the_secret() -> None:
    client = Client(create_app(containers=None, secret="s3cret", metrics=lambda: b"m 1\n"))  # type: ignore[arg-type]
    assert client.get("/nope").status_code == 401  # the secret first, as Flask's before_request
    missing = client.get("/nope", headers=AUTH)
    assert missing.status_code == 404 and "error" in missing.get_json()
    assert client.get("/agent/v1/containers/x/exec", headers=AUTH).status_code == 405
    metrics = client.get("/metrics", headers=AUTH)
    assert metrics.headers["Content-Type"].startswith("text/plain; version=0.0.4")

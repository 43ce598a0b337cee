"""The web UI's way to the API: the very same /api/v1 routes, called in-process through WSGI.

The UI never reads the database itself, so what a person may see and do in the browser is
exactly what their token may do through the API: the API's roles and validation stay the only
ones. Sits between the UI views (above) and the Flask app's API blueprints (below).
"""

from __future__ import annotations

from typing import Any

import httpx
from flask import current_app

from shoal.errors import ShoalError


class ApiRefused(ShoalError):
    """The API answered with an error; the message is the API's own one line."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Api:
    """JSON calls to this server's own API with the signed-in person's token."""

    def __init__(self, token: str) -> None:
        transport = httpx.WSGITransport(app=current_app.wsgi_app)
        self._http = httpx.Client(
            transport=transport,
            base_url="https://shoal.ui",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30.0,
        )

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    def get(self, path: str, **params: Any) -> Any:
        return self._json(self._http.get(f"/api/v1{path}", params=params))

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._json(self._http.post(f"/api/v1{path}", json=body or {}))

    def delete(self, path: str) -> Any:
        return self._json(self._http.delete(f"/api/v1{path}"))

    def text(self, path: str, **params: Any) -> str:
        response = self._http.get(f"/api/v1{path}", params=params)
        if response.status_code >= 400:
            raise ApiRefused(response.status_code, _message(response))
        return response.text

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise ApiRefused(response.status_code, _message(response))
        return response.json()


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])
    return f"HTTP {response.status_code}"

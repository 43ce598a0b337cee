"""The Flask application: the API blueprints, JSON errors, request metrics, the web UI if present.

`create_app(config)` wires the store (pool), the NOTIFY hub and the state builder into the app;
`serve.py` runs it under cheroot over HTTPS; the controller runs beside it.
"""

from __future__ import annotations

import importlib
import time

from flask import Flask, Response, g, request
from prometheus_client import Counter, Histogram

from shoal.control import pki
from shoal.control.api import agent, events, meta, nodes, secrets, services, tokens
from shoal.control.api.common import ServerContext, register_errors
from shoal.control.config import ServerConfig
from shoal.control.desired import Builder
from shoal.control.hub import Hub
from shoal.control.store.db import Database
from shoal.control.vault import Vault

REQUESTS = Counter("shoal_api_requests_total", "API requests", ["method", "endpoint", "status"])
LATENCY = Histogram("shoal_api_request_seconds", "API request latency", ["endpoint"])
_BLUEPRINTS = [meta.bp, agent.bp, nodes.bp, services.bp, secrets.bp, events.bp, tokens.bp]


def _context(config: ServerConfig) -> ServerContext:
    hub = Hub(config.dsn)
    vault = Vault(config.secrets_key)
    return ServerContext(
        config=config,
        db=Database(config.dsn, max_size=40),
        hub=hub,
        vault=vault,
        builder=Builder(vault, config.cluster_cidr, config.insecure_registries),
        ca_fingerprint=pki.fingerprint(config.ca_cert),
    )


def _before() -> None:
    g.started = time.monotonic()


def _after(response: Response) -> Response:
    endpoint = request.endpoint or "unknown"
    REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
    LATENCY.labels(endpoint).observe(time.monotonic() - g.get("started", time.monotonic()))
    return response


def _add_ui(app: Flask) -> None:
    """The web UI lives in shoal.control.ui.views (blueprint `bp`) once it exists."""
    try:
        views = importlib.import_module("shoal.control.ui.views")
    except ModuleNotFoundError as exc:
        if exc.name != "shoal.control.ui.views":
            raise
        return
    app.register_blueprint(views.bp)


def create_app(config: ServerConfig) -> Flask:
    app = Flask("shoal.control")
    app.extensions["shoal"] = context = _context(config)
    app.config["SECRET_KEY"] = config.secrets_key.read_bytes()
    app.json.sort_keys = False  # type: ignore[attr-defined]
    for bp in _BLUEPRINTS:
        app.register_blueprint(bp)
    _add_ui(app)
    register_errors(app)
    app.before_request(_before)
    app.after_request(_after)
    context.hub.start()
    return app


def close_app(app: Flask) -> None:
    context = app.extensions["shoal"]
    context.hub.stop()
    context.db.close()

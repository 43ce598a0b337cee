"""The Flask application: the API blueprints, JSON errors, request metrics, the web UI if present.

`create_app(config)` wires the store (a pool per lane), the NOTIFY hub and the state builder into
the app, behind `fairuse.RequestGuard`; `serve.py` runs it behind Caddy (front.py) in two lanes;
the controller runs beside it.
"""

from __future__ import annotations

import random
import time
from urllib.parse import urlparse

from flask import Flask, Response, g, request
from flask.typing import ResponseReturnValue
from prometheus_client import Counter, Histogram

from shoal.client.transport import SERVERS_HEADER
from shoal.control import pki
from shoal.control.api import (
    agent,
    events,
    ingress_ca,
    meta,
    metrics,
    nodes,
    policy,
    rebalance,
    registries,
    secrets,
    services,
    tokens,
    volumes,
    workload,
)
from shoal.control.api.common import ServerContext, ctx, end_acting, register_errors
from shoal.control.config import ServerConfig
from shoal.control.desired import Builder, ServerRoute
from shoal.control.fairuse import RequestGuard, ShoalRequest, closes_unread, method_label
from shoal.control.hub import Hub
from shoal.control.store.db import Database, DatabaseBusy
from shoal.control.ui import ui_blueprint
from shoal.control.vault import Vault
from shoal.model.state import IngressSettings

REQUESTS = Counter("shoal_api_requests_total", "API requests", ["method", "endpoint", "status"])
LATENCY = Histogram("shoal_api_request_seconds", "API request latency", ["endpoint"])
BUSY_ATTEMPTS = 4
_BLUEPRINTS = [
    meta.bp,
    metrics.bp,
    agent.bp,
    nodes.bp,
    services.bp,
    rebalance.bp,
    workload.bp,
    secrets.bp,
    registries.bp,
    events.bp,
    tokens.bp,
    policy.bp,
    volumes.bp,
    ingress_ca.bp,
]


class ShoalFlask(Flask):
    """Flask that runs a view again when PostgreSQL aborted its transaction (a deadlock with the
    controller, a serialization failure), as PostgreSQL advises: every view writes in one
    transaction, so nothing of the aborted attempt was kept. Forms parse in memory."""

    request_class = ShoalRequest

    def dispatch_request(self) -> ResponseReturnValue:
        for attempt in range(BUSY_ATTEMPTS - 1):
            try:
                return super().dispatch_request()
            except DatabaseBusy:
                time.sleep(random.uniform(0, 0.02 * 2**attempt))  # noqa: S311 (jitter, not secrets)
        return super().dispatch_request()


def _context(config: ServerConfig) -> ServerContext:
    hub = Hub(config.dsn)
    vault = Vault(config.secrets_key)
    return ServerContext(
        config=config,
        people_db=Database(config.dsn, max_size=24),
        node_db=Database(config.dsn, max_size=16),
        hub=hub,
        vault=vault,
        builder=Builder(
            vault,
            config.cluster_cidr,
            config.insecure_registries,
            ingress=ingress_settings(config),
            server_route=server_route(config),
        ),
        ca_fingerprint=pki.fingerprint(config.ca_cert),
    )


def ingress_settings(config: ServerConfig) -> IngressSettings:
    """What every ingress node gets: ACME, or the cluster-wide internal root's certificate (made at
    init; its key stays here: each node signs with its own intermediate, api/ingress_ca)."""
    if config.ingress_tls != "internal":
        return IngressSettings(tls="acme", acme_email=config.acme_email, acme_ca=config.acme_ca)
    return IngressSettings(tls="internal", ca_cert_pem=config.ingress_ca_cert.read_text())


def server_route(config: ServerConfig) -> ServerRoute | None:
    if not config.ingress_host or not config.server_node:
        return None
    port = config.listen_address()[1]
    name = urlparse(config.advertise).hostname or ""
    return ServerRoute(config.ingress_host, config.server_node, port, config.ca_cert.read_text(), name)


def _before() -> None:
    g.started = time.monotonic()


def _after(response: Response) -> Response:
    endpoint = request.endpoint or "unknown"
    REQUESTS.labels(method_label(request.method), endpoint, str(response.status_code)).inc()
    LATENCY.labels(endpoint).observe(time.monotonic() - g.get("started", time.monotonic()))
    closes_unread(request.environ, response.headers)
    urls = ctx().server_urls
    if urls:  # agents and the CLI keep them and fail over between them (client.transport)
        response.headers[SERVERS_HEADER] = ",".join(urls)
    return response


def _add_ui(app: Flask) -> None:
    """The web UI at `/`, its session cookie Secure, HttpOnly and SameSite=Lax."""
    app.config.update(
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="shoal_session",
        PERMANENT_SESSION_LIFETIME=12 * 3600,
    )
    app.register_blueprint(ui_blueprint())


def create_app(config: ServerConfig) -> Flask:
    app = ShoalFlask("shoal.control")
    app.extensions["shoal"] = context = _context(config)
    app.config["SECRET_KEY"] = config.secrets_key.read_bytes()
    app.json.sort_keys = False  # type: ignore[attr-defined]
    for bp in _BLUEPRINTS:
        app.register_blueprint(bp)
    _add_ui(app)
    register_errors(app)
    app.before_request(_before)
    app.after_request(_after)
    app.teardown_request(end_acting)
    app.wsgi_app = RequestGuard(app.wsgi_app, context.slots)  # type: ignore[method-assign]
    context.hub.start()
    return app


def close_app(app: Flask) -> None:
    context = app.extensions["shoal"]
    context.close()

"""Cluster metrics, each agent's metrics relayed over the overlay, and a Prometheus scrape config.

Every route needs at least the `metrics` role: a token made with `shoal token create --role
metrics` may read these and nothing else (docs/operations.md).
"""

from __future__ import annotations

import re

from flask import Blueprint, Response, request
from prometheus_client import CONTENT_TYPE_LATEST

from shoal.control.agents import AgentCalls
from shoal.control.api.common import caller, ctx
from shoal.control.cluster_metrics import exposition, scrape_config
from shoal.control.store import nodes, services, tasks
from shoal.control.store.db import cluster_version
from shoal.errors import ConfigError

SAFE_PATH = re.compile(r"[A-Za-z0-9_./-]{1,255}")
bp = Blueprint("metrics", __name__, url_prefix="/api/v1")


@bp.get("/metrics")
def cluster() -> Response:
    caller("metrics")
    with ctx().db.transaction() as conn:
        rows = (nodes.all_nodes(conn), services.all_services(conn), tasks.all_tasks(conn))
        version = cluster_version(conn)
    leader = ctx().leader is not None and ctx().leader.is_set()  # type: ignore[union-attr]
    return Response(exposition(*rows, leader, version), mimetype=CONTENT_TYPE_LATEST)


@bp.get("/nodes/<name>/metrics")
def agent(name: str) -> Response:
    caller("metrics")
    with ctx().db.transaction() as conn:
        node = nodes.require(conn, name)
        secret = nodes.agent_secret(conn, name)
    text = AgentCalls(ctx().config.agent_port).metrics(name, node["subnet"], secret)
    return Response(text, mimetype=CONTENT_TYPE_LATEST)


@bp.get("/metrics/scrape-config")
def config() -> Response:
    caller("metrics")
    with ctx().db.transaction() as conn:
        names = [n["name"] for n in nodes.all_nodes(conn)]
    token_file = _path_arg("token_file", "/etc/prometheus/shoal.token")
    ca_file = _path_arg("ca_file", "/etc/prometheus/shoal-ca.crt")
    text = scrape_config(ctx().config.advertise, names, token_file, ca_file)
    return Response(text, mimetype="text/yaml")


def _path_arg(name: str, default: str) -> str:
    """A file path for the generated YAML: plain characters only, so nothing is injected into it."""
    value = request.args.get(name, default)
    if not SAFE_PATH.fullmatch(value):
        raise ConfigError(f"{name}: a path of letters, digits and ._/- only")
    return value

"""Caddy's whole JSON config from the node state: a pure generator (agent/render).

The ingress reconciler loads the result through Caddy's admin API (`/load`) and skips the load
when `fingerprint()` of the new config equals that of the last one loaded.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shoal.model.state import IngressRoute, IngressSettings

INTERNAL_CA_ID = "shoal"
RETRYABLE_METHODS = ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]


@dataclass(frozen=True)
class CaddyPaths:
    """Where this node's Caddy keeps its admin socket, storage and the internal CA's files: the
    cluster root's certificate (never its key) and this node's own intermediate."""

    admin_socket: str
    storage_root: str
    ca_cert_file: str = ""
    intermediate_cert_file: str = ""
    intermediate_key_file: str = ""


@dataclass(frozen=True)
class CaddyPorts:
    http: int = 80
    https: int = 443


def render_caddy(
    routes: Sequence[IngressRoute],
    settings: IngressSettings,
    paths: CaddyPaths,
    ports: CaddyPorts | None = None,
) -> dict[str, Any]:
    """The complete config: admin on a Unix socket, one HTTPS server, TLS automation."""
    ports = ports or CaddyPorts()
    config: dict[str, Any] = {
        "admin": {
            "listen": f"unix/{paths.admin_socket}",
            "origins": ["localhost"],  # the Host our admin client sends over the socket
            "config": {"persist": False},
        },
        "storage": {"module": "file_system", "root": paths.storage_root},
        "apps": {"http": _http_app(routes, ports), "tls": _tls_app(routes, settings)},
    }
    if settings.tls == "internal":
        config["apps"]["pki"] = _pki_app(paths)
    return config


def fingerprint(config: dict[str, Any]) -> str:
    """A stable digest of a config, to skip loads that would change nothing."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _http_app(routes: Sequence[IngressRoute], ports: CaddyPorts) -> dict[str, Any]:
    server: dict[str, Any] = {"listen": [f":{ports.https}"], "routes": _routes(routes)}
    return {"http_port": ports.http, "https_port": ports.https, "servers": {"shoal": server}}


def _routes(routes: Sequence[IngressRoute]) -> list[dict[str, Any]]:
    """Most specific first: longer path prefixes of a host are matched before shorter ones."""
    ordered = sorted(routes, key=lambda r: (r.host, -len(r.path.rstrip("/")), r.path))
    return [_route(route) for route in ordered]


def _route(route: IngressRoute) -> dict[str, Any]:
    match: dict[str, Any] = {"host": [route.host]}
    prefix = route.path.rstrip("/")
    if prefix:
        match["path"] = [prefix, f"{prefix}/*"]
    return {"match": [match], "handle": [_proxy(route)], "terminal": True}


def _proxy(route: IngressRoute) -> dict[str, Any]:
    if not route.upstreams:
        return {"handler": "static_response", "status_code": 503, "body": "no healthy replica\n"}
    return {
        "handler": "reverse_proxy",
        "upstreams": [{"dial": upstream} for upstream in sorted(route.upstreams)],
        "load_balancing": {
            "selection_policy": {"policy": "round_robin"},
            "try_duration": "5s",
            "try_interval": "100ms",
            "retry_match": [{"method": RETRYABLE_METHODS}],
        },
        "health_checks": _health_checks(route),
        **_upstream_transport(route),
    }


def _upstream_transport(route: IngressRoute) -> dict[str, Any]:
    """HTTPS to upstreams that need it (the server's own API), trusting only the given root."""
    if not route.upstream_ca_pem:
        return {}
    tls: dict[str, Any] = {"root_ca_pool": [_pem_body(route.upstream_ca_pem)]}
    if route.upstream_server_name:
        tls["server_name"] = route.upstream_server_name
    return {"transport": {"protocol": "http", "tls": tls}}


def _pem_body(pem: str) -> str:
    """The base64 DER inside a PEM certificate, as Caddy's root_ca_pool wants it."""
    lines = [line.strip() for line in pem.strip().splitlines()]
    return "".join(line for line in lines if line and not line.startswith("-----"))


def _health_checks(route: IngressRoute) -> dict[str, Any]:
    checks: dict[str, Any] = {
        "passive": {"fail_duration": "10s", "max_fails": 1, "unhealthy_status": [502, 503, 504]}
    }
    if route.health_path:
        checks["active"] = {"path": route.health_path, "interval": "1s", "timeout": "1s"}
    return checks


def _tls_app(routes: Sequence[IngressRoute], settings: IngressSettings) -> dict[str, Any]:
    hosts = sorted({route.host for route in routes})
    if not hosts:
        return {}
    policy = {"subjects": hosts, "issuers": [_issuer(settings)]}
    return {"automation": {"policies": [policy]}}


def _issuer(settings: IngressSettings) -> dict[str, Any]:
    if settings.tls == "internal":
        return {"module": "internal", "ca": INTERNAL_CA_ID}
    issuer: dict[str, Any] = {"module": "acme"}
    if settings.acme_email:
        issuer["email"] = settings.acme_email
    if settings.acme_ca:
        issuer["ca"] = settings.acme_ca
    return issuer


def _pki_app(paths: CaddyPaths) -> dict[str, Any]:
    """The cluster root's certificate and this node's intermediate, which signs the leaves.

    Caddy 2.6 reads a key file for every given key pair, the root's too, but uses the root's key
    only to make an intermediate when none is given: the root is given the intermediate's key, so
    the root's own key is never on the node.
    """
    authority: dict[str, Any] = {"name": "shoal ingress", "install_trust": False}
    if paths.ca_cert_file and paths.intermediate_cert_file:
        key = paths.intermediate_key_file
        authority["root"] = {"certificate": paths.ca_cert_file, "private_key": key, "format": "pem_file"}
        authority["intermediate"] = {
            "certificate": paths.intermediate_cert_file,
            "private_key": key,
            "format": "pem_file",
        }
    return {"certificate_authorities": {INTERNAL_CA_ID: authority}}

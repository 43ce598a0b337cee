"""The Caddy config generator and the ingress plan: pure, no Caddy needed."""

from __future__ import annotations

import json
from dataclasses import replace

from shoal.agent.reconcilers.ingress import ObservedIngress, plan_ingress
from shoal.agent.render.caddy import CaddyPaths, CaddyPorts, fingerprint, render_caddy
from shoal.model.state import IngressRoute, IngressSettings

PATHS = CaddyPaths(
    "/run/shoal/caddy.sock",
    "/var/lib/shoal/caddy",
    "/ca/root.crt",
    "/ca/intermediate-ab.crt",
    "/ca/intermediate.key",
)


def _routes() -> list[IngressRoute]:
    return [
        IngressRoute(service="web", host="app.test", upstreams=["10.210.1.2:80", "10.210.2.2:80"]),
        IngressRoute(service="api", host="app.test", path="/api", upstreams=["10.210.1.3:8080"]),
    ]


def test_admin_listens_only_on_the_unix_socket() -> None:
    config = render_caddy(_routes(), IngressSettings(), PATHS)
    assert config["admin"]["listen"] == "unix//run/shoal/caddy.sock"


def test_longer_path_prefix_is_matched_first() -> None:
    routes = render_caddy(_routes(), IngressSettings(), PATHS)["apps"]["http"]["servers"]["shoal"]["routes"]
    assert routes[0]["match"] == [{"host": ["app.test"], "path": ["/api", "/api/*"]}]
    assert routes[1]["match"] == [{"host": ["app.test"]}]


def test_proxy_balances_over_every_upstream_with_retries() -> None:
    route = render_caddy(_routes(), IngressSettings(), PATHS)["apps"]["http"]["servers"]["shoal"]["routes"][1]
    proxy = route["handle"][0]
    assert proxy["handler"] == "reverse_proxy"
    assert [u["dial"] for u in proxy["upstreams"]] == ["10.210.1.2:80", "10.210.2.2:80"]
    assert proxy["load_balancing"]["try_duration"] == "5s"
    assert "passive" in proxy["health_checks"] and "active" not in proxy["health_checks"]


def test_active_health_check_when_the_route_names_a_path() -> None:
    route = IngressRoute(service="web", host="a.test", upstreams=["10.0.0.1:80"], health_path="/healthz")
    proxy = render_caddy([route], IngressSettings(), PATHS)["apps"]["http"]["servers"]["shoal"]["routes"][0]
    assert proxy["handle"][0]["health_checks"]["active"]["path"] == "/healthz"


def test_route_without_replicas_answers_503_instead_of_vanishing() -> None:
    route = IngressRoute(service="web", host="a.test", upstreams=[])
    handle = render_caddy([route], IngressSettings(), PATHS)["apps"]["http"]["servers"]["shoal"]["routes"][0]
    assert handle["handle"][0] == {
        "handler": "static_response",
        "status_code": 503,
        "body": "no healthy replica\n",
    }


def test_internal_tls_signs_with_the_nodes_intermediate_under_the_shared_root() -> None:
    config = render_caddy(_routes(), IngressSettings(tls="internal"), PATHS)
    policy = config["apps"]["tls"]["automation"]["policies"][0]
    assert policy == {"subjects": ["app.test"], "issuers": [{"module": "internal", "ca": "shoal"}]}
    assert config["apps"]["pki"]["certificate_authorities"]["shoal"] == {
        "name": "shoal ingress",
        "install_trust": False,
        # Caddy 2.6 reads a key file for the root too: it gets the intermediate's, never the root's
        "root": {"certificate": "/ca/root.crt", "private_key": "/ca/intermediate.key", "format": "pem_file"},
        "intermediate": {
            "certificate": "/ca/intermediate-ab.crt",
            "private_key": "/ca/intermediate.key",
            "format": "pem_file",
        },
    }
    assert "root.key" not in json.dumps(config)


def test_a_new_intermediate_changes_the_fingerprint() -> None:
    renewed = replace(PATHS, intermediate_cert_file="/ca/intermediate-cd.crt")
    settings = IngressSettings(tls="internal")
    first, second = render_caddy(_routes(), settings, PATHS), render_caddy(_routes(), settings, renewed)
    assert fingerprint(first) != fingerprint(second)


def test_without_a_root_caddy_keeps_its_own_authority() -> None:
    config = render_caddy(_routes(), IngressSettings(tls="internal"), CaddyPaths("/s", "/st"))
    assert config["apps"]["pki"]["certificate_authorities"]["shoal"] == {
        "name": "shoal ingress",
        "install_trust": False,
    }


def test_acme_issuer_carries_email_and_directory() -> None:
    settings = IngressSettings(tls="acme", acme_email="ops@example.com", acme_ca="https://acme.test/dir")
    config = render_caddy(_routes(), settings, PATHS, CaddyPorts(http=8080, https=8443))
    issuer = config["apps"]["tls"]["automation"]["policies"][0]["issuers"][0]
    assert issuer == {"module": "acme", "email": "ops@example.com", "ca": "https://acme.test/dir"}
    assert "pki" not in config["apps"]
    assert config["apps"]["http"]["https_port"] == 8443


def test_fingerprint_ignores_key_order_and_sees_upstream_changes() -> None:
    a = render_caddy(_routes(), IngressSettings(), PATHS)
    b = render_caddy(list(reversed(_routes())), IngressSettings(), PATHS)
    assert fingerprint(a) == fingerprint(b)
    changed = _routes()
    changed[0].upstreams.append("10.210.3.2:80")
    assert fingerprint(render_caddy(changed, IngressSettings(), PATHS)) != fingerprint(a)


def test_plan_starts_loads_skips_and_stops() -> None:
    desired = render_caddy(_routes(), IngressSettings(), PATHS)
    assert plan_ingress(desired, ObservedIngress(False, None)).action == "start"
    assert plan_ingress(desired, ObservedIngress(True, fingerprint(desired))).action == "none"
    assert plan_ingress(desired, ObservedIngress(True, "stale")).action == "load"
    assert plan_ingress(None, ObservedIngress(True, "x")).action == "stop"
    assert plan_ingress(None, ObservedIngress(False, None)).action == "none"


def test_https_upstream_trusts_only_the_given_root() -> None:
    pem = "-----BEGIN CERTIFICATE-----\nQUJD\nREVG\n-----END CERTIFICATE-----\n"
    route = IngressRoute(
        service="shoal-api", host="shoal.test", upstreams=["10.210.1.1:8443"], upstream_ca_pem=pem
    )
    proxy = render_caddy([route], IngressSettings(), PATHS)["apps"]["http"]["servers"]["shoal"]["routes"][0]
    assert proxy["handle"][0]["transport"] == {"protocol": "http", "tls": {"root_ca_pool": ["QUJDREVG"]}}

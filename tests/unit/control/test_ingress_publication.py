"""What ingress nodes are told: TLS settings from the server config, the server's own route."""

from __future__ import annotations

from pathlib import Path

from shoal.control import pki
from shoal.control.app import ingress_settings, server_route
from shoal.control.config import ServerConfig
from shoal.control.desired import ServerRoute, server_routes


def _config(tmp_path: Path, **extra: object) -> ServerConfig:
    return ServerConfig(data_dir=tmp_path, dsn="-", listen="0.0.0.0:8443", **extra)  # type: ignore[arg-type]


def test_acme_by_default_with_contact_and_directory(tmp_path: Path) -> None:
    settings = ingress_settings(
        _config(tmp_path, acme_email="ops@example.com", acme_ca="https://ca.test/dir")
    )
    assert (settings.tls, settings.acme_email, settings.acme_ca) == (
        "acme",
        "ops@example.com",
        "https://ca.test/dir",
    )


def test_internal_tls_hands_out_the_cluster_ingress_roots_certificate_only(tmp_path: Path) -> None:
    config = _config(tmp_path, ingress_tls="internal")
    pki.make_ca(config.ingress_ca_cert, config.ingress_ca_key, "shoal ingress root", path_length=1)
    settings = ingress_settings(config)
    assert settings.tls == "internal"
    assert settings.ca_cert_pem.startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY" not in settings.model_dump_json()


def test_server_route_points_at_the_server_nodes_overlay_address(tmp_path: Path) -> None:
    config = _config(
        tmp_path, ingress_host="shoal.example.com", server_node="n1", advertise="https://203.0.113.10:8443"
    )
    pki.make_ca(config.ca_cert, config.ca_key)
    route = server_route(config)
    assert route is not None and route.port == 8443
    nodes = [{"name": "n1", "subnet": "10.210.4.0/24"}, {"name": "n2", "subnet": "10.210.5.0/24"}]
    (published,) = server_routes(route, nodes)  # type: ignore[arg-type]
    assert published.host == "shoal.example.com"
    assert published.upstreams == ["10.210.4.1:8443"]
    assert published.upstream_ca_pem == config.ca_cert.read_text()
    assert published.upstream_server_name == "203.0.113.10"


def test_no_route_without_a_host_or_before_the_server_node_joined(tmp_path: Path) -> None:
    assert server_route(_config(tmp_path)) is None
    route = ServerRoute("shoal.example.com", "n9", 8443, "pem")
    assert server_routes(route, [{"name": "n1", "subnet": "10.210.4.0/24"}]) == []  # type: ignore[list-item]

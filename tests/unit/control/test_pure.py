"""Pure pieces of the control plane: peers, DNS records, tokens, revisions, config, migrations."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoal.control import auth
from shoal.control.api.agent import _mesh_facts
from shoal.control.config import ServerConfig
from shoal.control.desired import dns_records, ingress_routes
from shoal.control.revision import RevisionSpec, container_for
from shoal.control.store.migrate import migrations
from shoal.control.store.nodes import subnet_for
from shoal.errors import ConfigError
from shoal.model.status import NodeStatus, PeerStatus


def test_dns_names_every_healthy_replica() -> None:
    rows = [
        {"service": "web", "replica": 1, "ip": "10.210.1.2"},
        {"service": "web", "replica": 2, "ip": "10.210.2.2"},
    ]
    records = {r.name: r.addresses for r in dns_records(rows)}
    assert records == {
        "1.web.shoal.internal": ["10.210.1.2"],
        "2.web.shoal.internal": ["10.210.2.2"],
        "web.shoal.internal": ["10.210.1.2", "10.210.2.2"],
    }


def test_ingress_routes_point_at_healthy_replicas() -> None:
    spec = RevisionSpec.model_validate(
        {"template": {"id": "", "image": "i"}, "ingress": {"host": "a.example", "port": 8080}}
    )
    routes = ingress_routes({"web": spec}, [{"service": "web", "replica": 1, "ip": "10.210.1.2"}])
    assert routes[0].upstreams == ["10.210.1.2:8080"] and routes[0].host == "a.example"


def test_join_token_carries_ca_fingerprint_and_hashes_secret() -> None:
    _, token, hashed = auth.new_join_token("ab" * 32)
    assert token.startswith("shoal-join.") and token.endswith("." + "ab" * 32)
    assert auth.join_secret_hash(token) == hashed
    with pytest.raises(auth.Unauthorized):
        auth.join_secret_hash("garbage")


def test_roles_are_ordered() -> None:
    auth.Principal(kind="user", role="admin").require_role("operator")
    with pytest.raises(auth.Forbidden):
        auth.Principal(kind="user", role="viewer").require_role("operator")
    with pytest.raises(auth.Forbidden):
        auth.Principal(kind="node", node="a").require_node("b")


def test_container_for_stamps_task_identity() -> None:
    spec = RevisionSpec.model_validate({"template": {"id": "", "service": "web", "image": "i"}})
    cont = container_for(spec, "web-2-9", 2, 9, "10.210.1.3")
    assert (cont.id, cont.replica, cont.generation, cont.ip, cont.hostname) == (
        "web-2-9",
        2,
        9,
        "10.210.1.3",
        "web-2",
    )
    assert spec.template.id == ""


def test_subnets_and_listen_address() -> None:
    assert subnet_for("10.210.0.0/16", 3) == "10.210.3.0/24"
    cfg = ServerConfig(data_dir=Path("/x"), dsn="", listen="127.0.0.1:9")
    assert cfg.listen_address() == ("127.0.0.1", 9)
    with pytest.raises(ConfigError):
        ServerConfig(data_dir=Path("/x"), dsn="", listen="nope").listen_address()


def test_migrations_are_numbered_from_one() -> None:
    assert next(v for v, _ in migrations()) == 1


def test_what_a_report_tells_the_mesh_is_its_tunnels_endpoints_and_lan_address() -> None:
    peers = [
        PeerStatus(public_key="k3", name="n3", endpoint="198.51.100.254:40001", rx_bytes=1),
        PeerStatus(public_key="k4", name="n4", path="relayed", via="n1"),
    ]
    status = NodeStatus(node="n1", peers=peers, lan_endpoint="")
    assert _mesh_facts(status) == ("", ("n3", "198.51.100.254:40001"), "n1")
    later = [peers[0].model_copy(update={"rx_bytes": 9}), peers[1]]
    counters_only = status.model_copy(update={"peers": later})
    assert _mesh_facts(counters_only) == _mesh_facts(status)  # a heartbeat is no news

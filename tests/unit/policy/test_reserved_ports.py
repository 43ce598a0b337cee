"""Published ports that are the node's own (SSH, WireGuard, the API, the agent) are refused at
deploy, with the key and its line, whatever the policy grants."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoal.control.config import ServerConfig
from shoal.model.compose import PolicyRefused, parse_compose
from shoal.model.policy import grant_for, parse_policy
from shoal.model.ports import reserved_ports

ADMIN_ALL = "grants:\n  - roles: [admin]\n    privileged: true\n    network_mode_host: true\n"
RESERVED = tuple(sorted(reserved_ports(api_port=8443).items()))


def _refused(ports: str, role: str = "operator") -> list[str]:
    text = f"services:\n  web:\n    image: app:1\n    ports:\n{ports}"
    grant = grant_for(parse_policy(ADMIN_ALL), role, "web", (), RESERVED)
    with pytest.raises(PolicyRefused) as caught:
        parse_compose(text, "web", policy=grant)
    return caught.value.errors


@pytest.mark.parametrize(
    ("port", "holder"),
    [
        ('"51820:51820/udp"', "the mesh's WireGuard port"),
        ('"2222:22"', ""),  # the container's port is free to be anything
        ('"22:22"', "SSH"),
        ('"127.0.0.1:8443:443"', "the shoal API"),
        ("{target: 80, published: '7946'}", "the shoal agent"),
    ],
)
def test_a_reserved_host_port_is_refused_with_key_and_line(port: str, holder: str) -> None:
    if not holder:
        grant = grant_for(parse_policy(""), "operator", "web", (), RESERVED)
        parse_compose(f"services:\n  web:\n    image: app:1\n    ports: [{port}]\n", "web", policy=grant)
        return
    errors = _refused(f"      - {port}\n", role="admin")  # no policy grants it, not even to admins
    assert len(errors) == 1 and errors[0].startswith("services.web.ports[0]"), errors
    assert "line 5" in errors[0] and f"is reserved for {holder}" in errors[0], errors


def test_same_number_other_protocol_is_free() -> None:
    grant = grant_for(parse_policy(""), "operator", "web", (), RESERVED)
    parse_compose("services:\n  web:\n    image: app:1\n    ports: ['51820:80/tcp']\n", "web", policy=grant)


def test_the_servers_reserved_ports_follow_its_configuration() -> None:
    config = ServerConfig(
        data_dir=Path("/x"), dsn="", listen="0.0.0.0:9443", advertise="https://a:443", agent_port=9946
    )
    ports = config.reserved_ports()
    assert {"22/tcp", "51820/udp", "9443/tcp", "443/tcp", "9946/tcp"} == set(ports)

"""Each default is stated once: the server and the agent agree on what neither was told."""

from __future__ import annotations

from pathlib import Path

from shoal.agent.assemble import management_ports
from shoal.agent.config import AgentConfig
from shoal.agent.net.config import NetConfig
from shoal.control import commands, desired, postgres
from shoal.control.config import ServerConfig
from shoal.model.addressing import CLUSTER_CIDR, CLUSTER_DOMAIN
from shoal.model.ports import DNS_PORT
from shoal.model.state import NodeState


def server() -> ServerConfig:
    return ServerConfig(data_dir=Path("/nonexistent"), dsn="")


def test_the_server_names_records_under_the_agents_dns_domain() -> None:
    assert desired.dns_name("shop.web") == f"web.shop.{NetConfig().dns_domain}"
    assert NetConfig().dns_domain == CLUSTER_DOMAIN


def test_the_firewall_closes_the_port_the_api_listens_on_by_default() -> None:
    api_port = int(server().listen.rsplit(":", 1)[1])
    assert api_port in NetConfig().management_ports
    assert api_port in management_ports(AgentConfig())


def test_one_cluster_range() -> None:
    init = {p.name: p.default for p in commands.init_cmd.params}
    state = NodeState(node="n1", subnet="10.210.1.0/24")
    assert init["cluster_cidr"] == server().cluster_cidr == state.cluster_cidr == CLUSTER_CIDR


def test_one_dns_port_and_one_database_port() -> None:
    assert AgentConfig().dns_port == NetConfig().dns_port == DNS_PORT
    assert f"port={AgentConfig().database_port}" in postgres.dsn(Path("/pg"))


def test_the_agents_names_are_the_networking_defaults() -> None:
    assert (AgentConfig().bridge, AgentConfig().wg_interface) == (
        NetConfig().bridge,
        NetConfig().wg_interface,
    )

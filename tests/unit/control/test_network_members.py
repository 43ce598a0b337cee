"""The server's side of Compose networks: members cluster-wide, alias records, resolv.conf search."""

from __future__ import annotations

from shoal.agent.net.files import render_resolv_conf
from shoal.control.desired import dns_records, network_members, networks_for
from shoal.control.revision import RevisionSpec
from shoal.model.container import ContainerSpec


def _spec(
    service: str, networks: list[str], internal: list[str] | None = None, aliases: list[str] | None = None
) -> RevisionSpec:
    template = ContainerSpec(
        id="x",
        image="x",
        service=service,
        project=service.split(".", maxsplit=1)[0],
        networks=networks,
        internal_networks=internal or [],
        aliases=aliases or [],
    )
    return RevisionSpec(template=template)


SPECS = {
    "p.db": _spec("p.db", ["p/back"], ["p/back"], ["database"]),
    "p.api": _spec("p.api", ["p/back", "p/front"]),
    "q.app": _spec("q.app", []),
}
ROWS = [
    {"service": "p.db", "ip": "10.210.2.10", "node": "b", "replica": 1},
    {"service": "p.api", "ip": "10.210.1.3", "node": "a", "replica": 1},
    {"service": "p.api", "ip": "10.210.3.9", "node": "c", "replica": 2},
    {"service": "q.app", "ip": "10.210.1.4", "node": "a", "replica": 1},
    {"service": "gone.x", "ip": "10.210.1.5", "node": "a", "replica": 1},
]


def test_members_cluster_wide_by_network_and_internal_flag() -> None:
    nets = network_members(SPECS, ROWS)
    assert nets["p/back"].members == ["10.210.1.3", "10.210.2.10", "10.210.3.9"] and nets["p/back"].internal
    assert nets["p/front"].members == ["10.210.1.3", "10.210.3.9"] and not nets["p/front"].internal
    assert nets["q/default"].members == ["10.210.1.4"]  # no networks: the project's default
    assert set(nets) == {"p/back", "p/front", "q/default"}


def test_a_node_gets_only_the_networks_of_its_containers() -> None:
    nets = network_members(SPECS, ROWS)
    mine = [SPECS["p.db"].template]
    assert [n.key for n in networks_for(nets, mine)] == ["p/back"]


def test_aliases_resolve_within_the_project() -> None:
    records = {r.name: r.addresses for r in dns_records(ROWS[:1], SPECS)}
    assert records["database.p.shoal.internal"] == ["10.210.2.10"]
    assert records["db.p.shoal.internal"] == ["10.210.2.10"]


def test_resolv_conf_searches_the_project_first() -> None:
    text = render_resolv_conf("10.210.1.1", "shoal.internal", ["corp.example"], "p")
    assert "search p.shoal.internal shoal.internal corp.example\n" in text
    assert "search shoal.internal\n" in render_resolv_conf("10.210.1.1", "shoal.internal")

"""Answers for cluster names (pure)."""

from __future__ import annotations

import random

from dnslib import QTYPE, RCODE, DNSRecord

from shoal.agent.dns.answer import answer_local, records_from_state
from shoal.model.state import DnsRecord

RECORDS = records_from_state(
    [
        DnsRecord(name="web.shoal.internal", addresses=["10.210.1.2", "10.210.2.2", "10.210.3.2"]),
        DnsRecord(name="1.web.shoal.internal.", addresses=["10.210.1.2"]),
        DnsRecord(name="Web.shoal.internal", addresses=["10.210.1.2"]),
    ]
)


def _ask(name: str, qtype: str = "A", rng: random.Random | None = None) -> DNSRecord | None:
    return answer_local(DNSRecord.question(name, qtype), RECORDS, "shoal.internal", rng)


def test_service_name_gives_every_address_shuffled() -> None:
    orders = set()
    for seed in range(20):
        reply = _ask("web.shoal.internal", rng=random.Random(seed))
        assert reply is not None and reply.header.rcode == RCODE.NOERROR
        orders.add(tuple(str(rr.rdata) for rr in reply.rr))
    assert {frozenset(o) for o in orders} == {frozenset({"10.210.1.2", "10.210.2.2", "10.210.3.2"})}
    assert len(orders) > 1


def test_replica_name_and_case() -> None:
    reply = _ask("1.WEB.shoal.internal")
    assert reply is not None and [str(rr.rdata) for rr in reply.rr] == ["10.210.1.2"]


def test_unknown_cluster_name_is_nxdomain_and_other_types_empty() -> None:
    missing = _ask("nope.shoal.internal")
    assert missing is not None and missing.header.rcode == RCODE.NXDOMAIN
    aaaa = _ask("web.shoal.internal", "AAAA")
    assert aaaa is not None and aaaa.header.rcode == RCODE.NOERROR and not aaaa.rr
    assert QTYPE.A == 1


def test_outside_names_are_not_answered_here() -> None:
    assert _ask("example.org") is None
    assert _ask("notshoal.internal") is None


def test_plan_maps_each_container_address_to_its_compose_dns_servers() -> None:
    from shoal.agent.reconcilers.dns import DnsTable, plan
    from shoal.model.container import ContainerSpec
    from shoal.model.state import NodeState

    specs = [
        ContainerSpec(id="a-1", service="a", image="x", dns=["192.0.2.53", "192.0.2.54:5353"]),
        ContainerSpec(id="b-1", service="b", image="x"),
        ContainerSpec(id="c-1", service="c", image="x", dns=["192.0.2.9"]),  # no address yet
    ]
    state = NodeState(node="n", subnet="10.210.1.0/24", containers=specs)
    table = plan(state, DnsTable({}, {}), {"a-1": "10.210.1.2", "b-1": "10.210.1.3"})
    assert table is not None
    assert dict(table.forwarders) == {"10.210.1.2": ("192.0.2.53", "192.0.2.54:5353")}
    assert plan(state, table, {"a-1": "10.210.1.2", "b-1": "10.210.1.3"}) is None

"""Answers for the cluster's own names (agent/dns; pure).

Records come from the node state's `dns` list (`web.shoal.internal`, `1.web.shoal.internal`).
A query under the cluster domain is answered here: A records in shuffled order, NOERROR with no
answer for other types of a known name, NXDOMAIN for unknown names. Anything else returns None:
the server forwards it upstream.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

from dnslib import QTYPE, RCODE, RR, A, DNSRecord

from shoal.model.state import DnsRecord

Records = Mapping[str, tuple[str, ...]]
TTL_S = 5


def normal_name(name: str) -> str:
    return name.rstrip(".").lower()


def records_from_state(dns: list[DnsRecord]) -> dict[str, tuple[str, ...]]:
    table: dict[str, tuple[str, ...]] = {}
    for record in dns:
        key = normal_name(record.name)
        table[key] = tuple(dict.fromkeys((*table.get(key, ()), *record.addresses)))
    return table


def in_domain(name: str, domain: str) -> bool:
    return name == domain or name.endswith("." + domain)


def answer_local(
    query: DNSRecord, records: Records, domain: str, rng: random.Random | None = None
) -> DNSRecord | None:
    """The reply to a query for a cluster name; None when the name is outside the cluster domain."""
    qname = normal_name(str(query.q.qname))
    if not in_domain(qname, normal_name(domain)):
        return None
    reply = query.reply()
    addresses = records.get(qname)
    if addresses is None:
        if qname != normal_name(domain):
            reply.header.rcode = RCODE.NXDOMAIN
        return reply
    if query.q.qtype in (QTYPE.A, QTYPE.ANY):
        shuffled = list(addresses)
        (rng or random).shuffle(shuffled)
        for address in shuffled:
            reply.add_answer(RR(query.q.qname, QTYPE.A, rdata=A(address), ttl=TTL_S))
    return reply


def servfail(query: DNSRecord) -> DNSRecord:
    reply = query.reply()
    reply.header.rcode = RCODE.SERVFAIL
    return reply

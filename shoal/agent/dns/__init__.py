"""Service DNS of a node: `<service>.shoal.internal` answered from the node state, the rest forwarded."""

from shoal.agent.dns.answer import Records, answer_local, records_from_state
from shoal.agent.dns.server import DnsServer

__all__ = ["DnsServer", "Records", "answer_local", "records_from_state"]

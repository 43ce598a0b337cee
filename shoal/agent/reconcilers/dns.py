"""The node's service DNS (agent step, after the network: it listens on the bridge address).

`observe()` is the table the running server holds (cluster records, and the Compose `dns`
servers of each container by its address, which IPAM gave); the pure `plan()` is the new table,
or None when nothing changed; `apply()` swaps it into the server (no restart, no socket churn). The
server is started on the first run, on the bridge address and the configured port.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shoal.agent.dns.answer import records_from_state
from shoal.agent.dns.server import DnsServer
from shoal.agent.net.config import NetConfig
from shoal.agent.net.ipam import bridge_address
from shoal.model.state import NodeState


@dataclass(frozen=True)
class DnsTable:
    records: Mapping[str, tuple[str, ...]]
    forwarders: Mapping[str, tuple[str, ...]]  # container address -> its Compose `dns` servers


def forwarders_from_state(desired: NodeState, addresses: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    return {
        addresses[spec.id]: tuple(spec.dns)
        for spec in desired.containers
        if spec.dns and spec.id in addresses
    }


def plan(desired: NodeState, observed: DnsTable, addresses: Mapping[str, str]) -> DnsTable | None:
    wanted = DnsTable(records_from_state(desired.dns), forwarders_from_state(desired, addresses))
    same = (dict(wanted.records), dict(wanted.forwarders)) == (
        dict(observed.records),
        dict(observed.forwarders),
    )
    return None if same else wanted


class DnsReconciler:
    def __init__(self, config: NetConfig) -> None:
        self.config = config
        self.server: DnsServer | None = None
        self.forwarding: dict[str, tuple[str, ...]] = {}
        self.updates = 0

    def _ensure_server(self, subnet: str) -> DnsServer:
        if self.server is None:
            server = DnsServer(
                bridge_address(subnet),
                self.config.dns_port,
                domain=self.config.dns_domain,
                upstreams=self.config.upstream_dns,
                timeout_s=self.config.dns_timeout_s,
                namespace=self.config.node_netns,
            )
            server.start()
            self.server = server
        return self.server

    def observe(self) -> DnsTable:
        if self.server is None:
            return DnsTable({}, {})
        return DnsTable(self.server.records, self.forwarding)

    def apply(self, table: DnsTable) -> None:
        assert self.server is not None
        self.updates += 1
        self.server.update(table.records, table.forwarders)
        self.forwarding = dict(table.forwarders)

    def reconcile(self, desired: NodeState, addresses: Mapping[str, str] | None = None) -> DnsTable | None:
        """`addresses`: container id -> its address on the node subnet (the IPAM allocations)."""
        self._ensure_server(desired.subnet)
        todo = plan(desired, self.observe(), addresses or {})
        if todo is not None:
            self.apply(todo)
        return todo

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
            self.forwarding = {}

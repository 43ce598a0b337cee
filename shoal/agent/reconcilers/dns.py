"""The node's service DNS (agent step, after the network: it listens on the bridge address).

`observe()` is the record set the running server holds; the pure `plan()` is the new set, or
None when nothing changed; `apply()` swaps it into the server (no restart, no socket churn). The
server is started on the first run, on the bridge address and the configured port.
"""

from __future__ import annotations

from shoal.agent.dns.answer import Records, records_from_state
from shoal.agent.dns.server import DnsServer
from shoal.agent.net.config import NetConfig
from shoal.agent.net.ipam import bridge_address
from shoal.model.state import NodeState


def plan(desired: NodeState, observed: Records) -> dict[str, tuple[str, ...]] | None:
    wanted = records_from_state(desired.dns)
    return None if wanted == dict(observed) else wanted


class DnsReconciler:
    def __init__(self, config: NetConfig) -> None:
        self.config = config
        self.server: DnsServer | None = None
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

    def observe(self) -> Records:
        return self.server.records if self.server else {}

    def apply(self, records: Records) -> None:
        assert self.server is not None
        self.updates += 1
        self.server.update(records)

    def reconcile(self, desired: NodeState) -> dict[str, tuple[str, ...]] | None:
        self._ensure_server(desired.subnet)
        todo = plan(desired, self.observe())
        if todo is not None:
            self.apply(todo)
        return todo

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

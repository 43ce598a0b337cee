"""The node's firewall: one table, `inet shoal`, replaced whole (agent step, after the network).

`observe()` reads the fingerprint of the table in place; the pure `plan()` renders the wanted
ruleset (agent/render/nft.py) and keeps it only when its fingerprint differs; `apply()` swaps the
table in one libnftables transaction. A run with nothing changed makes no transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shoal.agent.net.config import NetConfig
from shoal.agent.render.nft import render
from shoal.agent.sys.nft import Nft
from shoal.model.state import NodeState


@dataclass(frozen=True)
class FirewallPlan:
    commands: list[dict[str, Any]] | None  # None: the table is already as wanted
    fingerprint: str

    @property
    def empty(self) -> bool:
        return self.commands is None


def with_addresses(state: NodeState, ips: Mapping[str, str]) -> NodeState:
    """The state with each container's address filled from the IPAM where the server left it unset."""
    containers = [c if c.ip else c.model_copy(update={"ip": ips.get(c.id)}) for c in state.containers]
    return state.model_copy(update={"containers": containers})


def plan(desired: NodeState, observed: str | None, config: NetConfig) -> FirewallPlan:
    commands, mark = render(
        desired,
        config.nft_table,
        bridge=config.bridge,
        wg=config.wg_interface,
        dns_port=config.dns_port,
        mgmt=list(config.management_ports),
    )
    return FirewallPlan(None if observed == mark else commands, mark)


class FirewallReconciler:
    def __init__(self, config: NetConfig) -> None:
        self.config = config
        self.nft = Nft(config.node_netns, config.nft_table)

    def observe(self) -> str | None:
        return self.nft.fingerprint()

    def apply(self, todo: FirewallPlan) -> None:
        if todo.commands is not None:
            self.nft.apply(todo.commands)

    def reconcile(self, desired: NodeState, ips: Mapping[str, str] | None = None) -> FirewallPlan:
        todo = plan(with_addresses(desired, ips or {}), self.observe(), self.config)
        self.apply(todo)
        return todo

    def remove(self) -> None:
        self.nft.remove()

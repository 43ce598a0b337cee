"""The node's firewall: one table, `inet shoal` (agent step, after the network).

`observe()` reads the fingerprint of the table in place and its sets' elements; the pure `plan()`
renders the wanted ruleset (agent/render/nft.py): when its fingerprint differs, `apply()` swaps the
table in one libnftables transaction; when only network members changed, it adds and deletes
those set elements in one transaction and leaves every rule as it is. A run with nothing changed
makes no transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shoal.agent.net.config import NetConfig
from shoal.agent.reconcilers.network import short_hash
from shoal.agent.render.nft import Ruleset, element_changes, render
from shoal.agent.render.nft_guard import BRIDGE
from shoal.agent.sys.nft import Nft, parse_elements, parse_fingerprint
from shoal.model.state import NodeState


@dataclass(frozen=True)
class Observed:
    fingerprint: str | None
    elements: dict[str, list[str]]


@dataclass(frozen=True)
class FirewallPlan:
    commands: list[dict[str, Any]] | None  # the whole table; None: its rules are already as wanted
    fingerprint: str
    elements: list[dict[str, Any]] | None = None  # set element adds/deletes on the table in place

    @property
    def empty(self) -> bool:
        return self.commands is None and not self.elements


def with_addresses(state: NodeState, ips: Mapping[str, str]) -> NodeState:
    """The state with each container's address filled from the IPAM where the server left it unset."""
    containers = [c if c.ip else c.model_copy(update={"ip": ips.get(c.id)}) for c in state.containers]
    return state.model_copy(update={"containers": containers})


def wanted_ruleset(desired: NodeState, config: NetConfig) -> Ruleset:
    """The node's ruleset, each container's port on the bridge named as the network step names it."""
    return render(
        desired,
        config.nft_table,
        bridge=config.bridge,
        wg=config.wg_interface,
        dns_port=config.dns_port,
        mgmt=list(config.management_ports),
        veths={c.id: f"{config.veth_prefix}{short_hash(c.id)}" for c in desired.containers},
    )


def plan(desired: NodeState, observed: Observed, config: NetConfig) -> FirewallPlan:
    wanted = wanted_ruleset(desired, config)
    if observed.fingerprint != wanted.fingerprint:
        return FirewallPlan(wanted.commands, wanted.fingerprint)
    changes = element_changes(config.nft_table, wanted.elements, observed.elements)
    return FirewallPlan(None, wanted.fingerprint, changes or None)


class FirewallReconciler:
    def __init__(self, config: NetConfig) -> None:
        self.config = config
        self.nft = Nft(config.node_netns, config.nft_table)

    def observe(self) -> Observed:
        listing = self.nft.listing()
        if listing is None:
            return Observed(None, {})
        bridge = parse_elements(self.nft.listing("bridge") or "")
        elements = {**parse_elements(listing), **{BRIDGE + k: v for k, v in bridge.items()}}
        return Observed(parse_fingerprint(listing), elements)

    def apply(self, todo: FirewallPlan) -> None:
        if todo.commands is not None:
            self.nft.apply(todo.commands)
        elif todo.elements:
            self.nft.change(todo.elements)

    def reconcile(self, desired: NodeState, ips: Mapping[str, str] | None = None) -> FirewallPlan:
        todo = plan(with_addresses(desired, ips or {}), self.observe(), self.config)
        self.apply(todo)
        return todo

    def remove(self) -> None:
        self.nft.remove()

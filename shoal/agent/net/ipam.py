"""Container address allocation on the node subnet, persisted in the state dir (agent/net).

The network reconciler asks for an address when it attaches a container and releases it on
detach. Allocations live in one JSON file written atomically, so they survive agent restarts.
The subnet's first address belongs to the bridge (the node's overlay address).
"""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path

from shoal.errors import Conflict, ShoalError
from shoal.model.addressing import overlay_ip


class IpamError(ShoalError):
    """No address left, or an address outside the node subnet."""


class AddressTaken(Conflict):
    """The address the server chose is still held here by another container (one stopping)."""

    def __init__(self, address: str, holder: str) -> None:
        super().__init__(f"address {address} is already used by {holder}")
        self.holder = holder


def bridge_address(subnet: str) -> str:
    """The subnet's first host address: the bridge's, the node's overlay address."""
    return overlay_ip(subnet)


class Ipam:
    def __init__(self, path: Path, subnet: str) -> None:
        self.path = path
        self.subnet = ipaddress.ip_network(subnet)
        self.allocations: dict[str, str] = self._load()

    def _load(self) -> dict[str, str]:
        if not self.path.exists():
            return {}
        doc = json.loads(self.path.read_text())
        if doc.get("subnet") != str(self.subnet):
            return {}  # the node got a new subnet: old addresses mean nothing there
        return {str(k): str(v) for k, v in doc.get("allocations", {}).items()}

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        doc = {"subnet": str(self.subnet), "allocations": dict(sorted(self.allocations.items()))}
        tmp.write_text(json.dumps(doc, indent=1))
        os.replace(tmp, self.path)

    def allocate(self, owner: str, wanted: str | None = None) -> str:
        """The owner's address: kept if it has one, `wanted` if free, else the lowest free one."""
        held = self.allocations.get(owner)
        if held is not None and wanted in (None, held):
            return held
        address = self._check(owner, wanted) if wanted else self._lowest_free()
        self.allocations[owner] = address
        self._save()
        return address

    def _check(self, owner: str, wanted: str) -> str:
        address = ipaddress.ip_address(wanted)
        if address not in self.subnet or str(address) == bridge_address(str(self.subnet)):
            raise IpamError(f"address {wanted} is not a container address of {self.subnet}")
        taken = {v: k for k, v in self.allocations.items()}
        if taken.get(str(address), owner) != owner:
            raise AddressTaken(wanted, taken[str(address)])
        return str(address)

    def _lowest_free(self) -> str:
        used = {*self.allocations.values(), bridge_address(str(self.subnet))}
        for host in self.subnet.hosts():
            if str(host) not in used:
                return str(host)
        raise IpamError(f"no free address left in {self.subnet}")

    def release(self, owner: str) -> None:
        if self.allocations.pop(owner, None) is not None:
            self._save()

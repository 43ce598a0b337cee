"""Placement constraints (`node.labels.zone==eu`): parsed at deploy time, matched by the scheduler.

Compose/Swarm syntax; `node.role` accepts Swarm's `manager` as shoal's `server`. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_CONSTRAINT = re.compile(
    r"\s*(node\.(?:hostname|id|role|labels\.[A-Za-z0-9_.\-/]+))\s*(==|!=)\s*([^\s=!][^=!]*?)\s*"
)
ROLES = {"server": "server", "manager": "server", "worker": "worker"}


@dataclass(frozen=True)
class Constraint:
    key: str  # node.hostname, node.id, node.role or node.labels.<name>
    op: str  # == or !=
    value: str

    def __str__(self) -> str:
        return f"{self.key}{self.op}{self.value}"

    def matches(self, hostname: str, node_id: str, role: str, labels: Mapping[str, str]) -> bool:
        have = _attribute(self.key, hostname, node_id, role, labels)
        return (have == self.value) if self.op == "==" else (have != self.value)


def _attribute(key: str, hostname: str, node_id: str, role: str, labels: Mapping[str, str]) -> str | None:
    if key.startswith("node.labels."):
        return labels.get(key.removeprefix("node.labels."))
    return {"node.hostname": hostname, "node.id": node_id or hostname, "node.role": role}[key]


def parse_constraint(text: str) -> Constraint:
    """`node.role != manager` → Constraint("node.role", "!=", "server"); ValueError when unsupported."""
    match = _CONSTRAINT.fullmatch(text)
    if match is None:
        raise ValueError(
            f'unsupported constraint "{text}" (use node.hostname, node.id, node.role or '
            "node.labels.NAME with == or !=)"
        )
    key, op, value = match.groups()
    if key == "node.role":
        if value not in ROLES:
            raise ValueError(f'unknown node role "{value}" (server, manager or worker)')
        value = ROLES[value]
    return Constraint(key, op, value)

"""`shoal server upgrade-check`: what would go wrong if the servers were upgraded to a version now.

Pure over the store's rows: each agent must fit the target version (`model.versions`), each node
must be up (a down node's agent cannot be checked, and comes back to a newer server), and no
rollout should be mid-way (a server restart in the middle only delays it, but an upgrade is
easier to judge on a settled cluster).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shoal.model.versions import agent_problem

ROLLING = ("updating", "rolling back")


def blockers(
    target: str,
    nodes: Sequence[Mapping[str, Any]],
    versions: Mapping[str, str],
    services: Sequence[Mapping[str, Any]],
) -> list[str]:
    """One line per thing that blocks an upgrade of the servers to `target`."""
    found = []
    for node in nodes:
        if node["down"]:
            found.append(f"node {node['name']}: down, its agent's version cannot be checked")
            continue
        problem = agent_problem(versions.get(node["name"], ""), target)
        if problem is not None:
            found.append(f"node {node['name']}: {problem}")
    found += [
        f"service {s['name']}: a rollout is {s['rollout_state']}"
        for s in services
        if s["rollout_state"] in ROLLING
    ]
    return found

"""Named volumes as placement facts (pure): a replica that uses a bound volume runs only on its node.

A volume is bound to a node the first time a replica using it is placed (the binding is stored,
`Plan.bind`), and from then on that node is the only one its services may use: while the node is
down or draining the replicas stay unplaced, never started elsewhere on an empty directory.
Global services are not pinned (each node keeps its own directory of the volume).
"""

from __future__ import annotations

from dataclasses import dataclass

from shoal.control.scheduler.cluster import Cluster
from shoal.control.scheduler.types import Plan, ServicePlacement, VolumeBinding


@dataclass(frozen=True)
class Pin:
    """Where a service's volumes keep it: `node` (pinned by `volume`), or a `conflict` message."""

    node: str | None = None
    volume: str = ""
    conflict: str | None = None

    def elsewhere(self) -> str:
        return f"volume {self.volume} is on node {self.node}"


def pin_of(svc: ServicePlacement, cluster: Cluster, kept_nodes: list[str] | None = None) -> Pin:
    """The node a replicated service's bound volumes are on; tasks placed before volumes were
    bound (`kept_nodes`) pin it to the first of their nodes."""
    if svc.mode != "replicated" or not svc.volumes:
        return Pin()
    found = sorted(
        {(cluster.volumes[(svc.project, v)], v) for v in svc.volumes if (svc.project, v) in cluster.volumes}
    )
    if len({node for node, _ in found}) > 1:
        where = ", ".join(f"volume {v} on node {node}" for node, v in found)
        return Pin(conflict=f"its volumes are on different nodes ({where})")
    if found:
        return Pin(found[0][0], found[0][1])
    if kept_nodes:
        return Pin(min(kept_nodes), sorted(svc.volumes)[0])
    return Pin()


def bind(svc: ServicePlacement, node: str, cluster: Cluster, plan: Plan) -> None:
    """Bind the service's volumes that are not bound yet to `node` (later services see it)."""
    if svc.mode != "replicated":
        return
    for volume in sorted(svc.volumes):
        if (svc.project, volume) not in cluster.volumes:
            cluster.volumes[(svc.project, volume)] = node
            plan.bind.append(VolumeBinding(svc.project, volume, node))

"""The WireGuard mesh of the cluster: each node's peers, relays for nodes behind NAT (control).

Pure: the server plans the mesh (`plan_mesh`) from the node rows and takes each node's part
(`Mesh.of`) as it builds that node's state document. Every node peers with every other,
AllowedIPs = that node's subnet. A node with no endpoint (behind NAT) cannot be dialled: its
peers get no endpoint and it keeps its tunnels open with PersistentKeepalive. Two NAT'd nodes
reach each other through one relay: the reachable node with the smallest name (deterministic);
the relay's peer entry on a NAT'd node also carries the other NAT'd nodes' subnets, and the relay
forwards between its WireGuard peers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from shoal.model.state import Peer

KEEPALIVE_S = 25


@dataclass(frozen=True)
class MeshNode:
    name: str
    subnet: str
    public_key: str
    endpoint: str | None  # host:port; None when behind NAT


@dataclass(frozen=True)
class NodeMesh:
    peers: list[Peer] = field(default_factory=list)
    relay: bool = False


def choose_relay(nodes: Sequence[MeshNode]) -> MeshNode | None:
    reachable = sorted((n for n in nodes if n.endpoint), key=lambda n: n.name)
    return reachable[0] if reachable else None


def _peer(other: MeshNode, natted_self: bool, extra: Sequence[str] = ()) -> Peer:
    return Peer(
        name=other.name,
        public_key=other.public_key,
        endpoint=other.endpoint,
        subnet=other.subnet,
        allowed_ips=[other.subnet, *extra],
        keepalive_s=KEEPALIVE_S if natted_self else 0,
    )


def peers_of(me: MeshNode, nodes: Sequence[MeshNode], relay: MeshNode | None) -> list[Peer]:
    others = [n for n in nodes if n.name != me.name and n.public_key]
    if me.endpoint:
        return [_peer(o, False) for o in others]
    behind = [o for o in others if not o.endpoint and relay is not None]
    relayed = sorted(o.subnet for o in behind)
    return [_peer(o, True, relayed if relay and o.name == relay.name else ()) for o in others if o.endpoint]


@dataclass(frozen=True)
class Mesh:
    """The cluster's mesh, from which each node's part is made when asked: a node's state holds
    its N-1 peers, so all of them at once would be N² objects held (40,000 at 200 nodes)."""

    nodes: dict[str, MeshNode]  # by name, sorted by name
    relay: MeshNode | None
    needs_relay: bool  # two or more nodes are behind NAT

    def of(self, name: str) -> NodeMesh:
        """The node's peers (sorted by name) and whether it relays; nothing for a node not in it."""
        me = self.nodes.get(name)
        if me is None:
            return NodeMesh()
        relays = self.needs_relay and self.relay is not None and name == self.relay.name
        return NodeMesh(peers=peers_of(me, list(self.nodes.values()), self.relay), relay=relays)


def plan_mesh(nodes: Sequence[MeshNode]) -> Mesh:
    ordered = sorted(nodes, key=lambda n: n.name)
    behind = sum(1 for n in ordered if not n.endpoint)
    return Mesh({n.name: n for n in ordered}, choose_relay(ordered), behind >= 2)


def mesh(nodes: Sequence[MeshNode]) -> dict[str, NodeMesh]:
    """Each node's peers (sorted by name) and whether it relays."""
    planned = plan_mesh(nodes)
    return {name: planned.of(name) for name in planned.nodes}

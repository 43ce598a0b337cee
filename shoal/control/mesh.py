"""The WireGuard mesh of the cluster: each node's peers, relays for nodes behind NAT (control).

Pure: the server plans the mesh (`plan_mesh`) from the node rows and takes each node's part
(`Mesh.of`) as it builds that node's state document. Every node peers with every other,
AllowedIPs = that node's subnet. A node with no endpoint (behind NAT) cannot be dialled: its
peers get no endpoint and it keeps its tunnels open with PersistentKeepalive.

Two NAT'd nodes reach each other through a relay. Every public node an admin marked as a relay
(`shoal node relay N on`, or a join token made with `--relay`; the label `shoal.relay=false`
still forbids it) is a candidate and forwards between its WireGuard peers.
A NAT'd node gets the candidates ranked (`relays`: the one most in use, then by name) and
the NAT'd nodes it reaches through one (`relayed`); its agent picks the relay it uses from the
handshakes it sees (agent.net.relaychoice), so the server's choice is a preference, not a
dependency. The preferred relay's peer entry carries the relayed subnets, as agents of old did.
Candidates send NAT'd peers a keepalive every `RELAY_KEEPALIVE_S`: the liveness the NAT'd side
watches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from shoal.model.state import Peer

KEEPALIVE_S = 25
RELAY_KEEPALIVE_S = 2
NO_RELAY_LABEL = "shoal.relay"  # an admin's `shoal.relay=false` keeps a node from relaying, marked or not
NO_DIRECT_LABEL = "shoal.direct"  # `shoal.direct=false`: a NAT'd node always goes through a relay


@dataclass(frozen=True)
class MeshNode:
    name: str
    subnet: str
    public_key: str
    endpoint: str | None  # host:port; None when behind NAT
    may_relay: bool = True  # the admin's word; only public nodes relay at all
    observed: str | None = None  # NAT'd: the public host:port its WireGuard packets come from
    lan: str | None = None  # NAT'd: its own address:port on the network behind its NAT
    may_direct: bool = True  # the admin's word: direct tunnels to other NAT'd nodes may be tried


@dataclass(frozen=True)
class NodeMesh:
    peers: list[Peer] = field(default_factory=list)
    relay: bool = False
    relays: list[str] = field(default_factory=list)
    relayed: list[Peer] = field(default_factory=list)


def _allowed(labels: dict[str, str], key: str) -> bool:
    return labels.get(key, "true").lower() not in ("false", "no", "0")


def may_relay(labels: dict[str, str]) -> bool:
    return _allowed(labels, NO_RELAY_LABEL)


def relay_allowed(marked: bool, labels: dict[str, str]) -> bool:
    """Whether a node may relay (when public): an admin marked it and did not label it
    `shoal.relay=false`. Never the node's own say."""
    return marked and may_relay(labels)


def may_direct(labels: dict[str, str]) -> bool:
    return _allowed(labels, NO_DIRECT_LABEL)


def relay_candidates(nodes: Sequence[MeshNode], in_use: Mapping[str, int] | None = None) -> list[MeshNode]:
    """Public nodes allowed to relay, the one most NAT'd nodes use now first (a node joining
    then picks the relay its NAT'd peers are on), then by name (the same on every node)."""
    used = in_use or {}
    allowed = (n for n in nodes if n.endpoint and n.may_relay and n.public_key)
    return sorted(allowed, key=lambda n: (-used.get(n.name, 0), n.name))


def choose_relay(nodes: Sequence[MeshNode]) -> MeshNode | None:
    candidates = relay_candidates(nodes)
    return candidates[0] if candidates else None


def _peer(other: MeshNode, keepalive_s: int, extra: Sequence[str] = ()) -> Peer:
    return Peer(
        name=other.name,
        public_key=other.public_key,
        endpoint=other.endpoint,
        subnet=other.subnet,
        allowed_ips=[other.subnet, *extra],
        keepalive_s=keepalive_s,
    )


def _public_peers(me: MeshNode, others: Sequence[MeshNode], relaying: bool) -> list[Peer]:
    """A public node's peers; a relay keeps NAT'd ones alive so they can see it is up."""
    natted_keepalive = RELAY_KEEPALIVE_S if relaying else 0
    return [_peer(o, 0 if o.endpoint else natted_keepalive) for o in others]


def peers_of(
    me: MeshNode, nodes: Sequence[MeshNode], relay: MeshNode | None, relaying: bool = False
) -> list[Peer]:
    others = [n for n in nodes if n.name != me.name and n.public_key]
    if me.endpoint:
        return _public_peers(me, others, relaying)
    behind = [o for o in others if not o.endpoint and relay is not None]
    relayed = sorted(o.subnet for o in behind)
    return [
        _peer(o, KEEPALIVE_S, relayed if relay and o.name == relay.name else ()) for o in others if o.endpoint
    ]


def direct_endpoint(me: MeshNode, other: MeshNode) -> str | None:
    """Where `me` may try `other` directly: its LAN address behind the same NAT (the same observed
    public address), else its observed public endpoint (the NAT may or may not let it through)."""
    if not (me.may_direct and other.may_direct):
        return None
    if me.observed and other.observed and _host(me.observed) == _host(other.observed):
        return other.lan or other.observed
    return other.observed


def _host(endpoint: str) -> str:
    return endpoint.rpartition(":")[0]


def relayed_of(me: MeshNode, nodes: Sequence[MeshNode]) -> list[Peer]:
    """The NAT'd nodes a NAT'd node reaches through a relay, each with the endpoint where a direct
    tunnel may be tried (None: relayed only)."""
    if me.endpoint:
        return []
    others = [o for o in nodes if o.name != me.name and o.public_key and not o.endpoint]
    return [
        _peer(o, RELAY_KEEPALIVE_S).model_copy(update={"endpoint": direct_endpoint(me, o)}) for o in others
    ]


@dataclass(frozen=True)
class Mesh:
    """The cluster's mesh, from which each node's part is made when asked: a node's state holds
    its N-1 peers, so all of them at once would be N² objects held (40,000 at 200 nodes)."""

    nodes: dict[str, MeshNode]  # by name, sorted by name
    candidates: list[MeshNode]  # relay candidates, ranked
    needs_relay: bool  # two or more nodes are behind NAT

    @property
    def relay(self) -> MeshNode | None:
        """The preferred relay."""
        return self.candidates[0] if self.candidates else None

    def of(self, name: str) -> NodeMesh:
        """The node's peers (sorted by name), whether it relays, its relays and relayed nodes."""
        me = self.nodes.get(name)
        if me is None:
            return NodeMesh()
        relaying = self.needs_relay and any(c.name == name for c in self.candidates)
        everyone = list(self.nodes.values())
        natted = self.needs_relay and not me.endpoint
        return NodeMesh(
            peers=peers_of(me, everyone, self.relay, relaying),
            relay=relaying,
            relays=[c.name for c in self.candidates] if natted else [],
            relayed=relayed_of(me, everyone) if natted and self.candidates else [],
        )


def plan_mesh(nodes: Sequence[MeshNode], in_use: Mapping[str, int] | None = None) -> Mesh:
    """The mesh; `in_use`: how many NAT'd nodes report going through each relay now."""
    ordered = sorted(nodes, key=lambda n: n.name)
    behind = sum(1 for n in ordered if not n.endpoint and n.public_key)
    return Mesh({n.name: n for n in ordered}, relay_candidates(ordered, in_use), behind >= 2)

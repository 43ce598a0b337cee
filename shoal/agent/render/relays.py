"""Which relay a NAT'd node uses, and the peers that choice gives (pure; agent WireGuard step).

The server ranks the relay candidates (`NodeState.relays`) and lists the NAT'd nodes reached
through one (`NodeState.relayed`); the node itself decides which candidate carries them, from
what it sees: a candidate is alive while its keepalives (every `RELAY_KEEPALIVE_S` on the relay's
side) keep raising the peer's received bytes. The node keeps its relay while it is alive and
moves to the best-ranked live candidate only once it has been silent for `stale_s`; a relay
that comes back does not take the traffic back (hysteresis: no flapping). No server is needed
for any of it, so the data plane rides out a server outage on the saved state.

Direct paths: a relayed node that comes with an endpoint (its LAN address behind the same NAT,
else its public address as relays see it) gets a tunnel of its own, tried with keepalives from
both sides (simultaneous handshakes punch through a NAT that maps endpoint-independently). It
carries nothing until its keepalives arrive; then the node's subnet moves onto it, and back to
the relay once the tunnel has been silent for `stale_s`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field

from shoal.model.state import NodeState, Peer

STALE_S = 5.0  # silent this long (2.5 relay keepalives), a relay is taken for gone


@dataclass(frozen=True)
class Liveness:
    """Per peer name: the received-bytes counter last seen and when it last grew (monotonic s)."""

    rx: Mapping[str, int] = field(default_factory=dict)
    grew_at: Mapping[str, float] = field(default_factory=dict)


def observe(seen: Liveness, rx: Mapping[str, int], now: float) -> Liveness:
    """The liveness after reading the counters at `now`; a peer seen first counts as just grown."""
    grew = {name: now for name, count in rx.items() if count != seen.rx.get(name, 0)}
    grew_at = {name: at for name in rx if (at := grew.get(name, seen.grew_at.get(name))) is not None}
    return Liveness(dict(rx), grew_at)


def alive(seen: Liveness, name: str, now: float, stale_s: float = STALE_S) -> bool:
    grew = seen.grew_at.get(name)
    return grew is not None and now - grew < stale_s


def choose(current: str, ranked: Sequence[str], seen: Liveness, now: float, stale_s: float = STALE_S) -> str:
    """The relay to use: the current one while it lives, else the best-ranked live one, else the
    current one (or the server's preference) as the best guess."""
    if not ranked:
        return ""
    if current in ranked and alive(seen, current, now, stale_s):
        return current
    live = [name for name in ranked if alive(seen, name, now, stale_s)]
    if live:
        return live[0]
    return current if current in ranked else ranked[0]


def direct_alive(state: NodeState, seen: Liveness, now: float, stale_s: float = STALE_S) -> set[str]:
    """The relayed nodes whose own tunnel is alive (its keepalives arrive): reached directly."""
    return {p.name for p in state.relayed if p.endpoint and alive(seen, p.name, now, stale_s)}


def relayed_subnets(state: NodeState) -> set[str]:
    return {p.subnet for p in state.relayed}


def routed_peers(state: NodeState, relay: str, direct: Set[str] = frozenset()) -> list[Peer]:
    """The state's peers with the relayed subnets on `relay`'s entry only (wherever the server put
    them), but those of nodes reached `direct`ly, which go on their own tunnels; a tunnel being
    tried carries nothing (subnet "") and keeps the endpoint the peer roamed to once alive."""
    moving = relayed_subnets(state)
    if not moving:
        return state.peers
    relayed = moving - {p.subnet for p in state.relayed if p.name in direct}
    peers = [_route(p, moving, relayed if p.name == relay else set()) for p in state.peers]
    return peers + [_attempt(p, p.name in direct) for p in state.relayed if p.endpoint]


def _route(peer: Peer, moving: set[str], carried: set[str]) -> Peer:
    own = [c for c in (peer.allowed_ips or [peer.subnet]) if c not in moving]
    wanted = own + sorted(carried)
    return peer if wanted == peer.allowed_ips else peer.model_copy(update={"allowed_ips": wanted})


def _attempt(peer: Peer, alive_now: bool) -> Peer:
    if alive_now:
        return peer.model_copy(update={"endpoint": None, "allowed_ips": [peer.subnet]})
    return peer.model_copy(update={"subnet": "", "allowed_ips": []})


def current_relay(state: NodeState, allowed: Mapping[str, Sequence[str]]) -> str:
    """The relay the device routes the relayed subnets through now (by peer name), or ""."""
    moving = relayed_subnets(state)
    for name in state.relays:
        if moving & set(allowed.get(name, ())):
            return name
    return ""

"""shoal.agent.render.relays: liveness from counters, relay choice with hysteresis, routed peers."""

from __future__ import annotations

from shoal.agent.render.relays import (
    STALE_S,
    Liveness,
    alive,
    choose,
    current_relay,
    direct_alive,
    observe,
    routed_peers,
)
from shoal.model.state import NodeState, Peer

RANKED = ["n1", "n2"]
D = "10.210.4.0/24"


def seen_at(now: float, **grew: float) -> Liveness:
    return Liveness(dict.fromkeys(grew, 1), dict(grew))


def test_a_counter_that_grows_keeps_its_peer_alive() -> None:
    first = observe(Liveness(), {"n1": 10, "n2": 5}, 100.0)
    assert alive(first, "n1", 100.0 + STALE_S - 0.1)  # seen first: counted as just grown
    later = observe(first, {"n1": 10, "n2": 9}, 104.0)
    assert later.grew_at == {"n1": 100.0, "n2": 104.0}
    assert not alive(later, "n1", 100.0 + STALE_S) and alive(later, "n2", 100.0 + STALE_S)


def test_a_peer_never_seen_is_not_alive() -> None:
    assert not alive(Liveness(), "n1", 0.0)


def test_the_current_relay_is_kept_while_alive_even_when_not_preferred() -> None:
    assert choose("n2", RANKED, seen_at(10, n1=10, n2=10), 11) == "n2"  # n1 came back: no flap


def test_a_silent_relay_is_left_for_the_best_ranked_live_one() -> None:
    assert choose("n1", RANKED, seen_at(10, n1=0, n2=10), 10) == "n2"
    assert choose("n1", ["n1", "n2", "n3"], seen_at(10, n1=0, n2=0, n3=9), 10) == "n3"


def test_silence_shorter_than_the_threshold_moves_nothing() -> None:
    assert choose("n1", RANKED, seen_at(10, n1=10 - STALE_S + 0.5, n2=10), 10) == "n1"


def test_nothing_alive_keeps_the_current_or_takes_the_preference() -> None:
    quiet = seen_at(100, n1=0, n2=0)
    assert choose("n2", RANKED, quiet, 100) == "n2"
    assert choose("", RANKED, quiet, 100) == "n1"
    assert choose("gone", RANKED, quiet, 100) == "n1"


def test_no_candidates_no_relay() -> None:
    assert choose("n1", [], seen_at(0, n1=0), 0) == ""


def test_a_relay_no_longer_a_candidate_is_left() -> None:
    assert choose("n0", RANKED, seen_at(0, n0=0, n1=0, n2=0), 0) == "n1"


def state() -> NodeState:
    peers = [
        Peer(name="n1", public_key="k1", subnet="10.210.1.0/24", allowed_ips=["10.210.1.0/24", D]),
        Peer(name="n2", public_key="k2", subnet="10.210.2.0/24", allowed_ips=["10.210.2.0/24"]),
    ]
    relayed = [Peer(name="n4", public_key="k4", subnet="10.210.4.0/24")]
    return NodeState(node="n3", subnet="10.210.3.0/24", peers=peers, relays=RANKED, relayed=relayed)


def test_routed_peers_move_the_relayed_subnets_to_the_chosen_relay_only() -> None:
    moved = {p.name: p.allowed_ips for p in routed_peers(state(), "n2")}
    assert moved == {"n1": ["10.210.1.0/24"], "n2": ["10.210.2.0/24", "10.210.4.0/24"]}


def test_routed_peers_for_the_servers_choice_are_the_servers_peers() -> None:
    assert routed_peers(state(), "n1") == state().peers
    assert routed_peers(state().model_copy(update={"relayed": []}), "n2") == state().peers


def test_the_current_relay_is_read_from_the_device() -> None:
    assert current_relay(state(), {"n1": ["10.210.1.0/24"], "n2": ["10.210.2.0/24", "10.210.4.0/24"]}) == "n2"
    assert current_relay(state(), {}) == ""


def test_a_counter_never_moved_is_no_sign_of_life() -> None:
    """A tunnel just tried (nothing received) must not carry traffic before it works."""
    fresh = observe(Liveness(), {"n4": 0}, 50.0)
    assert not alive(fresh, "n4", 50.0)
    assert alive(observe(fresh, {"n4": 32}, 51.0), "n4", 51.0)


def with_direct(endpoint: str | None) -> NodeState:
    relayed = [Peer(name="n4", public_key="k4", subnet=D, endpoint=endpoint, keepalive_s=2)]
    return state().model_copy(update={"relayed": relayed})


def test_a_tunnel_being_tried_carries_nothing_and_the_relay_carries_the_subnet() -> None:
    peers = {p.name: p for p in routed_peers(with_direct("192.168.1.4:51820"), "n1")}
    assert peers["n1"].allowed_ips == ["10.210.1.0/24", D]
    assert (peers["n4"].allowed_ips, peers["n4"].subnet, peers["n4"].endpoint) == (
        [],
        "",
        "192.168.1.4:51820",
    )


def test_a_live_direct_tunnel_takes_its_subnet_off_the_relay() -> None:
    peers = {p.name: p for p in routed_peers(with_direct("192.168.1.4:51820"), "n2", {"n4"})}
    assert peers["n1"].allowed_ips == ["10.210.1.0/24"] and peers["n2"].allowed_ips == ["10.210.2.0/24"]
    assert peers["n4"].allowed_ips == [D] and peers["n4"].endpoint is None  # keeps where it roamed


def test_no_endpoint_no_tunnel_tried() -> None:
    assert [p.name for p in routed_peers(with_direct(None), "n1")] == ["n1", "n2"]


def test_direct_alive_needs_an_endpoint_and_keepalives() -> None:
    seen = seen_at(10, n4=9.5)
    assert direct_alive(with_direct("192.168.1.4:51820"), seen, 10) == {"n4"}
    assert direct_alive(with_direct("192.168.1.4:51820"), seen, 9.5 + STALE_S) == set()
    assert direct_alive(with_direct(None), seen, 10) == set()

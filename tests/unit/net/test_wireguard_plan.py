"""UAPI text protocol and the incremental peer plan, on `get=1` answers captured from wireguard-go."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoal.agent.net.config import NetConfig
from shoal.agent.reconcilers.wireguard import WgObserved, plan, plan_device
from shoal.agent.sys.netlink import Link, Route
from shoal.agent.sys.wireguard import (
    PeerUpdate,
    WgSet,
    WireguardError,
    b64_to_hex,
    format_set,
    hex_to_b64,
    kernel_set_calls,
    load_or_create_key,
    parse_get,
    parse_kernel_device,
    public_key_of,
)
from shoal.model.state import NodeState, Peer

DATA = Path(__file__).parent / "data"
RELAY = parse_get((DATA / "uapi_get_relay.txt").read_text())
KEY_B = "BbmAkXYav50eNXA+0iJJaDSgKpb3+OL/RupPeEXSy34="  # endpoint 192.0.2.2:51820, 10.210.2.0/24
KEY_C = "4uCYo8RnCxbSD5RtAC0wgQNHze8lAopV4UVJnBHDnw4="  # NAT'd, roamed to 192.0.2.254:51820
KEY_D = "MsZvhfvjVDfsCoZvhuwAs0aYY0wQmoTHB996yGXE9C8="  # NAT'd, roamed to 192.0.2.254:7842
KEY_NEW = "x8hKuA9Q8E9p6fQ1p+3c2zQm0P2lWm8sUO1sS8Q3d0Y="


def _desired() -> list[Peer]:
    return [
        Peer(name="b", public_key=KEY_B, endpoint="192.0.2.2:51820", subnet="10.210.2.0/24"),
        Peer(
            name="c", public_key=KEY_C, endpoint=None, subnet="10.210.3.0/24", allowed_ips=["10.210.3.0/24"]
        ),
        Peer(name="d", public_key=KEY_D, endpoint=None, subnet="10.210.4.0/24"),
    ]


def test_parse_get_reads_peers_endpoints_handshakes_and_counters() -> None:
    assert RELAY.listen_port == 51820
    assert public_key_of(RELAY.private_key) == "1b4xEpwMw7oxaluEQV6SB8FwQfDw3XZ2Nv655ZdfyBE="
    assert set(RELAY.peers) == {KEY_B, KEY_C, KEY_D}
    d = RELAY.peers[KEY_D]
    assert d.endpoint == "192.0.2.254:7842" and d.allowed_ips == ("10.210.4.0/24",)
    assert d.last_handshake == 1795641237 and (d.rx_bytes, d.tx_bytes) == (436, 636)


def test_parse_get_with_keepalive_and_two_allowed_ips() -> None:
    natted = parse_get((DATA / "uapi_get_natted.txt").read_text())
    relay = next(p for p in natted.peers.values() if len(p.allowed_ips) == 2)
    assert relay.allowed_ips == ("10.210.1.0/24", "10.210.4.0/24") and relay.keepalive_s == 25


def test_parse_get_raises_on_errno() -> None:
    with pytest.raises(WireguardError, match="errno 1"):
        parse_get("errno=1\n\n")


def test_nothing_changed_plans_nothing() -> None:
    assert plan_device(RELAY.private_key, 51820, _desired(), RELAY).empty


def test_none_endpoint_never_overwrites_a_roamed_one() -> None:
    change = plan_device(RELAY.private_key, 51820, _desired(), RELAY)
    assert all(u.public_key not in (KEY_C, KEY_D) for u in change.peers)


def test_adding_one_peer_mentions_only_that_peer() -> None:
    wanted = [
        *_desired(),
        Peer(name="e", public_key=KEY_NEW, endpoint="192.0.2.5:51820", subnet="10.210.5.0/24"),
    ]
    change = plan_device(RELAY.private_key, 51820, wanted, RELAY)
    assert change == WgSet(peers=(PeerUpdate(KEY_NEW, True, "192.0.2.5:51820", 0, ("10.210.5.0/24",)),))
    text = format_set(change)
    assert text.startswith("set=1\npublic_key=") and text.endswith("allowed_ip=10.210.5.0/24\n\n")
    assert "update_only" not in text and "replace_peers" not in text


def test_changed_peer_is_updated_in_place_and_a_gone_one_removed() -> None:
    wanted = _desired()[:2]
    wanted[0] = wanted[0].model_copy(update={"allowed_ips": ["10.210.2.0/24", "10.210.9.0/24"]})
    change = plan_device(RELAY.private_key, 51820, wanted, RELAY)
    assert change.remove == (KEY_D,)
    assert change.peers == (PeerUpdate(KEY_B, False, None, None, ("10.210.2.0/24", "10.210.9.0/24")),)
    text = format_set(change)
    assert (
        "update_only=true\nreplace_allowed_ips=true\nallowed_ip=10.210.2.0/24\nallowed_ip=10.210.9.0/24\n"
        in text
    )
    assert text.endswith("remove=true\n\n")
    assert f"public_key={bytes(__import__('base64').b64decode(KEY_D)).hex()}\nremove=true" in text


def test_hex_and_base64_round_trip() -> None:
    assert hex_to_b64(bytes.fromhex("00" * 32).hex()) == "A" * 43 + "="


def test_plan_routes_the_cluster_into_the_tunnel_from_the_bridge_address() -> None:
    state = NodeState(node="a", subnet="10.210.1.0/24", peers=_desired())
    config = NetConfig(wg_interface="wg-a")
    link = Link(7, "wg-a", "tun", 1420, True, 0)
    ok = WgObserved(RELAY, link, Route("10.210.0.0/16", 7, "10.210.1.1", None))
    assert plan(state, RELAY.private_key, config, ok).empty
    missing = plan(
        state, RELAY.private_key, config, WgObserved(RELAY, Link(7, "wg-a", "tun", 1500, False, 0), None)
    )
    assert missing.route == ("10.210.0.0/16", "10.210.1.1") and missing.link == {"mtu": 1420, "state": "up"}


def test_kernel_set_calls_translate_a_change_for_pyroute2() -> None:
    change = WgSet(
        listen_port=51820,
        peers=(
            PeerUpdate(KEY_NEW, True, "192.0.2.5:51820", 25, ("10.210.5.0/24",)),
            PeerUpdate(KEY_B, False),
        ),
        remove=(KEY_D,),
    )
    calls = kernel_set_calls(change)
    assert calls[0] == {"private_key": None, "listen_port": 51820}
    assert calls[1] == {
        "peer": {
            "public_key": KEY_NEW,
            "update_only": False,
            "endpoint_addr": "192.0.2.5",
            "endpoint_port": 51820,
            "persistent_keepalive": 25,
            "replace_allowed_ips": True,
            "allowed_ips": ["10.210.5.0/24"],
        }
    }
    assert calls[2] == {"peer": {"public_key": KEY_B, "update_only": True}}
    assert calls[3] == {"peer": {"public_key": KEY_D, "remove": True}}


def test_kernel_device_parsed_from_pyroute2_wireguard_messages() -> None:
    """Messages built and decoded by pyroute2's own WireGuard codec (no kernel module here)."""
    from pyroute2.netlink.generic.wireguard import AsyncWireGuard, wgmsg

    msg = wgmsg()
    msg["cmd"], msg["version"] = 0, 1
    msg["attrs"].extend([["WGDEVICE_A_PRIVATE_KEY", RELAY.private_key], ["WGDEVICE_A_LISTEN_PORT", 51820]])
    codec = AsyncWireGuard.__new__(AsyncWireGuard)
    for call in kernel_set_calls(
        WgSet(peers=(PeerUpdate(KEY_C, True, "192.0.2.254:7842", 25, ("10.210.3.0/24",)),))
    ):
        codec._wg_set_peer(msg, call["peer"])
    msg.encode()
    decoded = wgmsg(msg.data)
    decoded.decode()
    device = parse_kernel_device([decoded])
    assert device.private_key == RELAY.private_key and device.listen_port == 51820
    peer = device.peers[KEY_C]
    assert (peer.endpoint, peer.allowed_ips, peer.keepalive_s) == ("192.0.2.254:7842", ("10.210.3.0/24",), 25)


def test_private_key_made_once_and_kept_0600(tmp_path: Path) -> None:
    private, public = load_or_create_key(tmp_path / "k" / "wg.key")
    assert (tmp_path / "k" / "wg.key").stat().st_mode & 0o777 == 0o600
    assert load_or_create_key(tmp_path / "k" / "wg.key") == (private, public)
    assert public_key_of(private) == public


def test_device_settings_are_set_only_when_they_differ() -> None:
    change = plan_device(RELAY.private_key, 51821, _desired(), RELAY)
    assert change == WgSet(listen_port=51821)
    assert format_set(change) == "set=1\nlisten_port=51821\n\n"
    fresh = plan_device(RELAY.private_key, 51820, [], parse_get("errno=0\n\n"))
    assert format_set(fresh).startswith(
        f"set=1\nprivate_key={b64_to_hex(RELAY.private_key)}\nlisten_port=51820\n"
    )


def test_an_endpoint_that_does_not_resolve_leaves_the_peer_endpoint_alone() -> None:
    from shoal.agent.reconcilers.wireguard import _resolved

    peer = Peer(name="x", public_key=KEY_B, endpoint="192.0.2.2:no-port", subnet="10.210.2.0/24")
    assert _resolved(peer).endpoint is None
    assert _resolved(peer.model_copy(update={"endpoint": "192.0.2.2:51820"})).endpoint == "192.0.2.2:51820"

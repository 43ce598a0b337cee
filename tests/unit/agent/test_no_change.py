"""Every reconciler's pure plan on the golden node state, observed as its apply left the machine:
the plan is empty (no netlink write, no nft transaction, no Caddy load, no runc call).

One node state for all of them (tests/unit/data/golden/node_state.json, the input of
test_golden_documents.py), as pyinfra's `no_change` cases do per operation. Each case also drifts
one observed fact, so an empty plan cannot come from a planner that sees nothing.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from shoal.agent.net.config import NetConfig
from shoal.agent.reconcilers import dns, firewall, network, wireguard
from shoal.agent.reconcilers.containers import Seen, plan_containers
from shoal.agent.reconcilers.ingress import IngressConfig, IngressReconciler, ObservedIngress, plan_ingress
from shoal.agent.render.caddy import fingerprint
from shoal.agent.render.nft import set_name
from shoal.agent.sys.netlink import Link, Route
from shoal.agent.sys.wireguard import WgDevice, WgPeer
from shoal.model.state import NodeState

STATE = NodeState.model_validate_json(
    (Path(__file__).parents[1] / "data" / "golden" / "node_state.json").read_text()
)
NET = NetConfig(bridge="shoal0", wg_interface="shoal-wg", wg_port=51820, management_ports=(7946, 7443, 5432))
ADDRESSES = {c.id: c.ip for c in STATE.containers if c.ip}
NOW = 1_000_000.0
PRIVATE_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


def test_containers_running_as_desired() -> None:
    seen = {
        c.id: Seen(c.id, "running", pid=100 + i, started_at=NOW - 60, image_digest=c.image_digest, ip=c.ip)
        for i, c in enumerate(STATE.containers)
    }
    assert plan_containers(STATE.containers, seen, now=NOW).empty
    left_over = {**seen, "shop.web-1-1": Seen("shop.web-1-1", "running", pid=99)}  # the old generation
    assert plan_containers(STATE.containers, left_over, now=NOW).remove == ("shop.web-1-1",)


def test_bridge_up_addressed_forwarding() -> None:
    bridge = Link(3, "shoal0", "bridge", NET.mtu, True, 0)
    observed = network.NetObserved(bridge, ("10.210.1.1/24",), True, tuple(sorted(ADDRESSES)))
    assert network.plan(STATE, observed, NET.mtu).empty
    assert not network.plan(STATE, dataclasses.replace(observed, forwarding=False), NET.mtu).empty


def test_firewall_table_in_place() -> None:
    ruleset = firewall.wanted_ruleset(STATE, NET)
    elements = json.loads(json.dumps(ruleset.elements))  # as read back from the kernel's listing
    observed = firewall.Observed(ruleset.fingerprint, elements)
    assert firewall.plan(STATE, observed, NET).empty
    one_gone = {**elements, set_name("shop/back"): ["10.210.1.3"]}  # a member missing
    assert firewall.plan(STATE, firewall.Observed(ruleset.fingerprint, one_gone), NET).elements


def test_dns_table_served() -> None:
    records = {r.name: tuple(r.addresses) for r in STATE.dns}
    observed = dns.DnsTable(records, {"10.210.1.3": ("192.0.2.53",)})  # api's Compose `dns:`
    assert dns.plan(STATE, observed, ADDRESSES) is None
    assert dns.plan(STATE, dns.DnsTable(records, {}), ADDRESSES) is not None


def test_caddy_running_the_config() -> None:
    wanted = IngressReconciler(
        IngressConfig(
            state_dir=Path("/var/lib/shoal/caddy"), admin_socket=Path("/run/shoal/caddy/admin.sock")
        )
    ).desired(STATE)
    assert wanted is not None
    running = json.loads(json.dumps(wanted))  # as Caddy's GET /config/ answers it back
    assert plan_ingress(wanted, ObservedIngress(True, fingerprint(running))).action == "none"
    assert plan_ingress(wanted, ObservedIngress(False, None)).action == "start"


def test_wireguard_device_link_and_route() -> None:
    roamed = {"n3": "203.0.113.7:40112"}  # a NAT'd peer's endpoint, as its packets arrive: no change
    peers = {
        p.public_key: WgPeer(p.public_key, p.endpoint or roamed[p.name], tuple(p.allowed_ips), p.keepalive_s)
        for p in STATE.peers
    }
    link = Link(5, "shoal-wg", "tun", NET.mtu, True, 0)
    route = Route(STATE.cluster_cidr, 5, "10.210.1.1", None)
    observed = wireguard.WgObserved(WgDevice(PRIVATE_KEY, 51820, peers), link, route)
    assert wireguard.plan(STATE, PRIVATE_KEY, NET, observed).empty
    down = dataclasses.replace(observed, link=dataclasses.replace(link, up=False))
    assert wireguard.plan(STATE, PRIVATE_KEY, NET, down).link == {"state": "up"}

"""The node-networking reconcilers on four real "nodes" (namespaces) with wireguard-go tunnels.

a and b are public on 192.0.2.0/24; c and d sit behind a NAT router (203.0.113.0/24) that drops
unsolicited inbound traffic, so c reaches d only through the relay a. Containers are network
namespaces attached by the network reconciler; commands run in them with nsenter.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from pathlib import Path

from shoal.agent.reconcilers.firewall import Observed, plan, with_addresses
from shoal.agent.reconcilers.network import NetworkReconciler
from shoal.agent.sys.wireguard import load_or_create_key
from shoal.model.state import Peer
from tests.integration.net.topology import Topology, nsexec


def _ip(cluster: Topology, node: str, cid: str) -> str:
    network = cluster.nodes[node].network
    assert network is not None
    return network.ipam.allocations[cid]


def _ping(ns: Path, address: str, count: int = 3) -> str:
    return nsexec(ns, "ping", "-c", str(count), "-i", "0.2", "-W", "2", address).stdout


def _lookup(ns: Path, name: str, server: str) -> list[str]:
    out = nsexec(ns, "busybox", "nslookup", name, server, timeout=10).stdout
    return re.findall(r"Address: (\d+\.\d+\.\d+\.\d+)", out.split("Name:", 1)[-1]) if "Name:" in out else []


def test_containers_reach_each_other_by_address_and_name(cluster: Topology) -> None:
    a = cluster.nodes["a"]
    web1 = a.containers["web-1"]
    assert " 0% packet loss" in _ping(web1, _ip(cluster, "b", "web-2"))
    assert _lookup(web1, "2.web.shoal.internal", a.gateway) == [_ip(cluster, "b", "web-2")]
    assert sorted(_lookup(web1, "web.shoal.internal", a.gateway)) == sorted(
        [_ip(cluster, "a", "web-1"), _ip(cluster, "b", "web-2")]
    )
    resolv = (a.config.files_dir / "web-1" / "resolv.conf").read_text()
    assert resolv.startswith(f"nameserver {a.gateway}\nsearch shoal.internal")


def test_unknown_cluster_name_is_nxdomain_not_a_hang(cluster: Topology) -> None:
    a = cluster.nodes["a"]
    began = time.monotonic()
    out = nsexec(a.containers["web-1"], "busybox", "nslookup", "nope.shoal.internal", a.gateway, timeout=10)
    assert "NXDOMAIN" in out.stdout + out.stderr and time.monotonic() - began < 3


def test_natted_nodes_reach_each_other_through_the_relay(cluster: Topology) -> None:
    c, d = cluster.nodes["c"], cluster.nodes["d"]
    assert " 0% packet loss" in _ping(c.containers["api-1"], _ip(cluster, "d", "api-2"), 5)
    assert " 0% packet loss" in _ping(d.containers["api-2"], _ip(cluster, "a", "web-1"))
    assert c.wireguard is not None and d.wireguard is not None
    peers = c.wireguard.backend.get().peers
    assert d.wireguard.public_key not in peers  # no direct tunnel: the relay carries d's subnet
    relay = peers[cluster.nodes["a"].wireguard.public_key]  # type: ignore[union-attr]
    assert set(relay.allowed_ips) == {"10.210.1.0/24", d.subnet} and relay.keepalive_s == 25
    assert cluster.states["a"].relay


def test_published_port_from_the_internet_and_from_the_node(cluster: Topology) -> None:
    a = cluster.nodes["a"]
    www = a.config.state_dir / "www"
    www.mkdir(exist_ok=True)
    (www / "index.html").write_text("hello from web-1\n")
    cluster.spawn(a.containers["web-1"], "busybox", "httpd", "-f", "-p", "80", "-h", str(www))
    time.sleep(0.3)
    url = f"http://{a.underlay}:8080/"
    assert nsexec(cluster.inet, "curl", "-s", "-m", "3", url).stdout == "hello from web-1\n"
    assert nsexec(a.netns, "curl", "-s", "-m", "3", url).stdout == "hello from web-1\n"
    # a container of another node (masqueraded out of its node) and the container itself (hairpin)
    web2 = cluster.nodes["b"].containers["web-2"]
    assert nsexec(web2, "curl", "-s", "-m", "3", url).stdout == "hello from web-1\n"
    assert nsexec(a.containers["web-1"], "curl", "-s", "-m", "3", url).stdout == "hello from web-1\n"


def test_management_port_unreachable_from_a_container_while_dns_works(cluster: Topology) -> None:
    a, b = cluster.nodes["a"], cluster.nodes["b"]
    www = a.config.state_dir / "mgmt"
    www.mkdir(exist_ok=True)
    (www / "index.html").write_text("agent\n")
    cluster.spawn(a.netns, "busybox", "httpd", "-f", "-p", "7946", "-h", str(www))
    cluster.spawn(b.netns, "busybox", "httpd", "-f", "-p", "7946", "-h", str(www))
    time.sleep(0.3)
    web1 = a.containers["web-1"]
    for target in (a.gateway, a.underlay, b.gateway):
        out = nsexec(web1, "curl", "-s", "-m", "2", f"http://{target}:7946/")
        assert out.stdout == "", target
    # the node itself and other nodes' overlay addresses still reach it
    assert nsexec(a.netns, "curl", "-s", "-m", "2", f"http://{a.gateway}:7946/").stdout
    assert nsexec(a.netns, "curl", "-s", "-m", "3", f"http://{b.gateway}:7946/").stdout
    assert _lookup(web1, "1.web.shoal.internal", a.gateway) == [_ip(cluster, "a", "web-1")]


def test_rerun_while_pinging_loses_nothing_and_writes_nothing(cluster: Topology) -> None:
    src, dst = cluster.nodes["c"].containers["api-1"], _ip(cluster, "b", "web-2")
    _ping(src, dst, 1)
    before = {name: node.writes() for name, node in cluster.nodes.items()}
    result: dict[str, str] = {}
    pinger = threading.Thread(target=lambda: result.update(out=_ping(src, dst, 40)))
    pinger.start()
    changed = [cluster.reconcile_all() for _ in range(3)]
    pinger.join()
    assert all(not any(steps) for run in changed for steps in run.values())
    assert {name: node.writes() for name, node in cluster.nodes.items()} == before
    assert "40 packets transmitted, 40 received" in result["out"]


def test_new_peer_leaves_the_other_tunnels_alone(cluster: Topology, tmp_path: Path) -> None:
    b = cluster.nodes["b"]
    assert b.wireguard is not None
    before = b.wireguard.backend.get().peers
    writes = b.wireguard.writes
    _, key = load_or_create_key(tmp_path / "extra.key")
    extra = Peer(name="e", public_key=key, endpoint="192.0.2.77:51820", subnet="10.210.77.0/24")
    state = cluster.states["b"]
    grown = state.model_copy(update={"peers": [*state.peers, extra]})
    assert len(b.wireguard.reconcile(grown).device.peers) == 1
    after = b.wireguard.backend.get().peers
    assert b.wireguard.writes == writes + 1 and key in after
    for pub, peer in before.items():
        assert (after[pub].last_handshake, after[pub].endpoint) == (peer.last_handshake, peer.endpoint)
    assert b.wireguard.reconcile(state).device.remove == (key,)
    assert key not in b.wireguard.backend.get().peers


def test_agent_restart_keeps_addresses_and_writes_nothing(cluster: Topology) -> None:
    a = cluster.nodes["a"]
    again = NetworkReconciler(a.config, a.subnet)
    path, ip = again.attach("web-1")
    assert (path, ip) == (a.containers["web-1"], _ip(cluster, "a", "web-1"))
    assert again.reconcile(cluster.states["a"]).empty and again.netlink.writes == 0


def test_firewall_touches_only_its_table(cluster: Topology) -> None:
    a = cluster.nodes["a"]
    assert a.firewall is not None
    assert nsexec(a.netns, "nft", "add", "table", "ip", "someone_else").returncode == 0
    assert a.network is not None
    state = with_addresses(cluster.states["a"], a.network.ipam.allocations)
    transactions = a.firewall.nft.transactions
    a.firewall.apply(plan(state, Observed(None, {}), a.config))  # a forced swap of the whole table
    assert a.firewall.nft.transactions == transactions + 1
    tables = nsexec(a.netns, "nft", "list", "tables").stdout
    assert "table ip someone_else" in tables and "table inet shoal" in tables
    a.firewall.remove()
    tables = nsexec(a.netns, "nft", "list", "tables").stdout
    assert "table inet shoal" not in tables and "table ip someone_else" in tables
    assert not a.firewall.reconcile(cluster.states["a"], a.network.ipam.allocations).empty
    assert a.firewall.reconcile(cluster.states["a"], a.network.ipam.allocations).empty


def test_container_left_the_state_is_detached_once_its_processes_are_gone(cluster: Topology) -> None:
    b = cluster.nodes["b"]
    assert b.network is not None
    path, ip = b.network.attach("tmp-1")
    sleeper = cluster.spawn(path, "sleep", "60")
    time.sleep(0.2)
    assert b.network.reconcile(cluster.states["b"]).detach == ()
    assert path.exists() and b.network.ipam.allocations["tmp-1"] == ip
    sleeper.kill()
    sleeper.wait(timeout=5)
    assert b.network.reconcile(cluster.states["b"]).detach == ("tmp-1",)
    assert not path.exists() and "tmp-1" not in b.network.ipam.allocations
    assert b.network.host_veth("tmp-1") not in b.network.netlink.links()


def test_an_address_reused_by_a_new_container_is_reachable_at_once(cluster: Topology) -> None:
    """The node's ARP entry for the old container's MAC goes with it (not after it expires)."""
    b = cluster.nodes["b"]
    assert b.network is not None
    node_ns = b.network.config.node_netns
    _, ip = b.network.attach("reuse-1")
    assert " 0% packet loss" in _ping(node_ns, ip, 1)  # the bridge now maps ip to reuse-1's MAC
    b.network.detach("reuse-1")
    _, again = b.network.attach("reuse-2", ip)
    try:
        assert again == ip
        assert " 0% packet loss" in _ping(node_ns, ip, 1)
    finally:
        b.network.detach("reuse-2")


def _httpd_log(cluster: Topology, ns: Path, port: int, log: Path) -> None:
    www = log.parent / f"www{port}"
    www.mkdir(exist_ok=True)
    (www / "index.html").write_text("ok\n")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["nsenter", f"--net={ns}", "busybox", "httpd", "-f", "-vv", "-p", str(port), "-h", str(www)],
            stdout=out,
            stderr=out,
        )
    cluster.procs.append(proc)
    time.sleep(0.3)


def test_masquerade_only_for_traffic_leaving_the_cluster(cluster: Topology, tmp_path: Path) -> None:
    a, b = cluster.nodes["a"], cluster.nodes["b"]
    outside, inside = tmp_path / "outside.log", tmp_path / "inside.log"
    _httpd_log(cluster, cluster.inet, 9000, outside)
    _httpd_log(cluster, b.containers["web-2"], 9001, inside)
    web1 = a.containers["web-1"]
    assert nsexec(web1, "curl", "-s", "-m", "3", "http://192.0.2.100:9000/").stdout == "ok\n"
    assert (
        nsexec(web1, "curl", "-s", "-m", "3", f"http://{_ip(cluster, 'b', 'web-2')}:9001/").stdout == "ok\n"
    )
    time.sleep(0.2)
    assert a.underlay in outside.read_text() and _ip(cluster, "a", "web-1") not in outside.read_text()
    assert _ip(cluster, "a", "web-1") in inside.read_text()


def test_a_dead_wireguard_go_is_restarted_and_fully_reconfigured(cluster: Topology) -> None:
    b = cluster.nodes["b"]
    assert b.wireguard is not None
    b.wireguard.process.stop()
    assert b.config.wg_interface not in b.wireguard.netlink.links()
    todo = b.wireguard.reconcile(cluster.states["b"])
    assert todo.device.private_key is not None and len(todo.device.peers) == 3 and todo.route is not None
    # the restarted side's first packet makes the new handshake (the others still hold old sessions)
    assert " 0% packet loss" in _ping(b.containers["web-2"], _ip(cluster, "a", "web-1"))
    assert " 0% packet loss" in _ping(cluster.nodes["a"].containers["web-1"], _ip(cluster, "b", "web-2"))
    assert b.wireguard.reconcile(cluster.states["b"]).empty

"""The node against its containers, on real nftables: cloud metadata, spoofed sources, and ports
published on one address only (nodes a, b public; c, d NAT'd; three containers on a)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.model.container import PortMapping
from tests.integration.net.topology import Topology, nsexec, run, running_cluster

SERVICES = {"a": ["web-1", "web-2", "web-3"], "b": ["api-1"]}
METADATA = "169.254.169.254"
WORLD = "192.0.2.100"
SECOND = "192.0.2.51"  # another address of node a


@pytest.fixture(scope="module")
def cluster() -> Iterator[Topology]:
    with running_cluster(SERVICES) as topology:
        # a metadata service "in the cloud": on the internet namespace, routed from node a
        # (on its loopback: this kernel has no dummy links)
        run("ip", "-n", topology.inet.name, "addr", "add", f"{METADATA}/32", "dev", "lo")
        a = topology.nodes["a"].netns.name
        run("ip", "-n", a, "route", "add", f"{METADATA}/32", "via", WORLD)
        run("ip", "-n", a, "addr", "add", f"{SECOND}/24", "dev", "eth0")
        yield topology


def _ns(cluster: Topology, cid: str) -> Path:
    return cluster.nodes["a"].containers[cid]


def _ip(cluster: Topology, cid: str) -> str:
    network = cluster.nodes["a"].network
    assert network is not None
    return network.ipam.allocations[cid]


def _pings(ns: Path, target: str, *extra: str) -> bool:
    out = nsexec(ns, "ping", "-c", "2", "-i", "0.2", "-W", "1", *extra, target).stdout
    return " 0% packet loss" in out


def _reconcile_a(cluster: Topology) -> None:
    cluster.reconcile(cluster.nodes["a"])


def test_metadata_is_unreachable_unless_the_policy_allows_it(cluster: Topology) -> None:
    web1 = _ns(cluster, "web-1")
    assert _pings(web1, WORLD)  # the way out works
    assert not _pings(web1, METADATA)
    cluster.states["a"].metadata_access = True
    _reconcile_a(cluster)
    try:
        assert _pings(web1, METADATA)
    finally:
        cluster.states["a"].metadata_access = False
        _reconcile_a(cluster)
    assert not _pings(web1, METADATA)


def _echo_counter(ns: Path, source: str) -> None:
    for command in (
        ["add", "table", "ip", "seen"],
        ["add", "chain", "ip", "seen", "in", "{ type filter hook input priority 0 ; }"],
        ["add", "rule", "ip", "seen", "in", "ip", "saddr", source, "icmp", "type", "echo-request", "counter"],
    ):
        assert nsexec(ns, "nft", *command).returncode == 0, command


def _echoes_seen(ns: Path) -> int:
    listing = json.loads(nsexec(ns, "nft", "-j", "list", "table", "ip", "seen").stdout)
    rule = next(i["rule"] for i in listing["nftables"] if "rule" in i)
    counter = next(e["counter"] for e in rule["expr"] if "counter" in e)
    return int(counter["packets"])


def test_a_container_cannot_send_as_its_neighbour(cluster: Topology) -> None:
    web1, web2 = _ns(cluster, "web-1"), _ns(cluster, "web-2")
    neighbour = _ip(cluster, "web-3")  # on the same network: its packets would be let through
    _echo_counter(web2, neighbour)
    run("nsenter", f"--net={web1}", "ip", "addr", "add", f"{neighbour}/32", "dev", "eth0")
    try:
        assert _pings(web1, _ip(cluster, "web-2"))  # its own address goes through (web-2's MAC known)
        _pings(web1, _ip(cluster, "web-2"), "-I", neighbour)
        assert _echoes_seen(web2) == 0
    finally:
        run("nsenter", f"--net={web1}", "ip", "addr", "del", f"{neighbour}/32", "dev", "eth0")


def _serve(cluster: Topology, cid: str) -> None:
    www = cluster.tmp / "www"
    www.mkdir(exist_ok=True)
    (www / "index.html").write_text(f"hello from {cid}\n")
    cluster.spawn(_ns(cluster, cid), "busybox", "httpd", "-f", "-p", "80", "-h", str(www))
    time.sleep(0.3)


def _get(ns: Path, url: str) -> str:
    return nsexec(ns, "curl", "-s", "-m", "2", url).stdout


def test_a_port_published_on_one_address_is_reachable_only_there(cluster: Topology) -> None:
    a, b = cluster.nodes["a"], cluster.nodes["b"]
    web1 = next(c for c in cluster.states["a"].containers if c.id == "web-1")
    web1.ports = [
        PortMapping(host_port=8081, container_port=80, host_ip="127.0.0.1"),
        PortMapping(host_port=8082, container_port=80, host_ip=a.underlay),
        PortMapping(host_port=8083, container_port=80),
    ]
    _reconcile_a(cluster)
    _serve(cluster, "web-1")
    assert _get(a.netns, "http://127.0.0.1:8081/") == "hello from web-1\n"  # the node itself
    assert _get(b.netns, f"http://{a.underlay}:8081/") == ""  # not from another node
    assert _get(cluster.inet, f"http://{a.underlay}:8082/") == "hello from web-1\n"
    assert _get(cluster.inet, f"http://{SECOND}:8082/") == ""  # not on the node's other address
    assert _get(cluster.inet, f"http://{SECOND}:8083/") == "hello from web-1\n"  # "": every address


def test_a_second_pass_changes_nothing_and_the_ports_are_set_elements(cluster: Topology) -> None:
    """The bridge table's elements read back as rendered: nothing to do on the next pass."""
    a = cluster.nodes["a"]
    assert a.firewall is not None and a.network is not None
    assert not cluster.reconcile(a)[2]
    observed = a.firewall.observe().elements
    veth = a.network.host_veth("web-1")
    assert (
        veth in observed["bridge/ports"] and f"{veth} . {_ip(cluster, 'web-1')}" in observed["bridge/owned"]
    )


def _lookup(ns: Path, name: str, server: str) -> list[str]:
    out = nsexec(ns, "busybox", "nslookup", name, server, timeout=10).stdout
    return re.findall(r"Address: (\d+\.\d+\.\d+\.\d+)", out.split("Name:", 1)[-1]) if "Name:" in out else []


def test_a_published_dns_port_does_not_take_the_containers_resolver(cluster: Topology) -> None:
    a = cluster.nodes["a"]
    web2 = next(c for c in cluster.states["a"].containers if c.id == "web-2")
    web2.ports = [PortMapping(host_port=53, container_port=53, protocol="udp")]  # nothing listens there
    _reconcile_a(cluster)
    try:
        assert _lookup(_ns(cluster, "web-3"), "1.web.shoal.internal", a.gateway) == [_ip(cluster, "web-1")]
    finally:
        web2.ports = []
        _reconcile_a(cluster)

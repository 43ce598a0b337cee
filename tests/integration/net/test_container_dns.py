"""Compose `dns` on a real node: one container's other names go to its own servers.

One public node (namespaces, real reconcilers) with two containers; two DnsServers on the node
netns' loopback stand for the node's upstream (`www.example.test` -> 192.0.2.80) and for the
upstream web-2's Compose file names (-> 192.0.2.99). Both containers keep the node's DNS server
in resolv.conf, so cluster names resolve for both.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.agent.dns import DnsServer
from shoal.model.state import NodeState
from tests.integration.net.topology import Topology, nsexec


@dataclasses.dataclass
class Setup:
    cluster: Topology
    own_upstream: str  # "127.0.0.1:port" in the node's netns


@pytest.fixture(scope="module")
def setup() -> Iterator[Setup]:
    if shutil.which("wireguard-go") is None:
        pytest.skip("wireguard-go is not installed")
    cluster = Topology(["a"], [])
    servers: list[DnsServer] = []
    try:
        cluster.build()
        node = cluster.nodes["a"]
        for address in ("192.0.2.80", "192.0.2.99"):
            server = DnsServer("127.0.0.1", 0, domain="example.test", namespace=node.netns)
            server.start()
            servers.append(server)
            server.update({"www.example.test": (address,)})
        node.config = dataclasses.replace(node.config, upstream_dns=(f"127.0.0.1:{servers[0].port}",))
        cluster.start({"a": ["web-1", "web-2"]})
        yield Setup(cluster, f"127.0.0.1:{servers[1].port}")
    finally:
        for server in servers:
            server.stop()
        cluster.close()


def _lookup(ns: Path, name: str, server: str) -> list[str]:
    out = nsexec(ns, "busybox", "nslookup", name, server, timeout=10).stdout
    return re.findall(r"Address: (\d+\.\d+\.\d+\.\d+)", out.split("Name:", 1)[-1]) if "Name:" in out else []


def _set_dns(setup: Setup, cid: str, servers: list[str]) -> NodeState:
    state = setup.cluster.states["a"]
    containers = [c.model_copy(update={"dns": servers}) if c.id == cid else c for c in state.containers]
    setup.cluster.states["a"] = state.model_copy(update={"containers": containers})
    return setup.cluster.states["a"]


def test_a_container_with_dns_gets_other_names_from_its_servers(setup: Setup) -> None:
    node = setup.cluster.nodes["a"]
    _set_dns(setup, "web-2", [setup.own_upstream])
    assert setup.cluster.reconcile(node)[3]  # the DNS step had the new forwarders to swap in
    web1, web2 = node.containers["web-1"], node.containers["web-2"]
    assert _lookup(web1, "www.example.test", node.gateway) == ["192.0.2.80"]
    assert _lookup(web2, "www.example.test", node.gateway) == ["192.0.2.99"]
    assert len(_lookup(web2, "web.shoal.internal", node.gateway)) == 2  # cluster names still answered
    resolv = (node.config.files_dir / "web-2" / "resolv.conf").read_text()
    assert resolv.startswith(f"nameserver {node.gateway}\n")


def test_dns_removed_goes_back_to_the_node_upstreams_and_reruns_are_quiet(setup: Setup) -> None:
    node = setup.cluster.nodes["a"]
    _set_dns(setup, "web-2", [setup.own_upstream])
    setup.cluster.reconcile(node)
    assert not setup.cluster.reconcile(node)[3]
    _set_dns(setup, "web-2", [])
    assert setup.cluster.reconcile(node)[3]
    assert _lookup(node.containers["web-2"], "www.example.test", node.gateway) == ["192.0.2.80"]


def test_an_unanswering_container_upstream_is_servfail_for_it_alone(setup: Setup) -> None:
    node = setup.cluster.nodes["a"]
    _set_dns(setup, "web-2", ["127.0.0.1:9"])  # nothing listens there in the node's netns
    setup.cluster.reconcile(node)
    web2 = node.containers["web-2"]
    out = nsexec(web2, "busybox", "nslookup", "www.example.test", node.gateway, timeout=10)
    assert "192.0.2.99" not in out.stdout and "192.0.2.80" not in out.stdout
    assert _lookup(node.containers["web-1"], "www.example.test", node.gateway) == ["192.0.2.80"]

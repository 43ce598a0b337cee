"""A container's network as attach() makes it, read back with iproute2 (real netlink, namespaces).

attach() builds the veth in one request (the peer born as eth0 inside the container's netns,
the host end on the bridge and up); these check what that must still add up to.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shoal.agent.net.config import NetConfig
from shoal.agent.reconcilers import network as network_module
from shoal.agent.reconcilers.network import NetworkReconciler
from shoal.model.container import ContainerSpec
from shoal.model.state import NodeState

pytestmark = pytest.mark.integration

NODE_NETNS = "sbx-attach-node"
SUBNET = "10.250.7.0/24"


@pytest.fixture
def network() -> Iterator[NetworkReconciler]:
    base = Path(tempfile.mkdtemp(prefix="sbx-attach-"))
    subprocess.run(["ip", "netns", "add", NODE_NETNS], check=True)
    config = NetConfig(
        state_dir=base / "state",
        run_dir=base / "run",
        node_netns=Path("/run/netns") / NODE_NETNS,
        netns_dir=base / "netns",  # made a mount point, as `ip netns` does /run/netns
        bridge="sbxattbr",
        netns_prefix="sbxatt",
        veth_prefix="sbxav",
    )
    reconciler = NetworkReconciler(config, SUBNET)
    try:
        yield reconciler
    finally:
        reconciler.close()
        subprocess.run(["ip", "netns", "del", NODE_NETNS], check=False)
        unmount_under(base)
        shutil.rmtree(base, ignore_errors=True)


def unmount_under(base: Path) -> None:
    for line in reversed(Path("/proc/self/mounts").read_text().splitlines()):
        if line.split()[1].startswith(f"{base}/"):
            subprocess.run(["umount", "-l", line.split()[1]], check=False)


def ip_json(netns: Path | str, *args: str) -> Any:
    """`ip -j` in a netns given by name or by path."""
    enter = ["ip", "-n", netns] if isinstance(netns, str) else ["nsenter", f"--net={netns}", "ip"]
    return json.loads(subprocess.run([*enter, "-j", *args], check=True, capture_output=True).stdout)


def test_eth0_is_addressed_up_at_the_mtu_with_a_default_route(network: NetworkReconciler) -> None:
    path, address = network.attach("web-1")
    eth0 = ip_json(path, "-4", "addr", "show", "dev", "eth0")[0]
    assert eth0["mtu"] == network.config.mtu and "UP" in eth0["flags"]
    assert [(a["local"], a["prefixlen"]) for a in eth0["addr_info"]] == [(address, 24)]
    assert "UP" in ip_json(path, "link", "show", "dev", "lo")[0]["flags"]
    default = ip_json(path, "route", "show", "default")
    assert [(r["gateway"], r["dev"]) for r in default] == [("10.250.7.1", "eth0")]


def test_the_host_end_is_on_the_bridge_up_in_hairpin_mode(network: NetworkReconciler) -> None:
    network.attach("web-1")
    host = ip_json(NODE_NETNS, "-d", "link", "show", "dev", network.host_veth("web-1"))[0]
    assert host["master"] == "sbxattbr" and "UP" in host["flags"]
    assert host["mtu"] == network.config.mtu
    assert host["linkinfo"]["info_slave_data"]["hairpin"] is True


def test_a_second_attach_writes_nothing_and_a_broken_one_is_plugged_again(
    network: NetworkReconciler,
) -> None:
    path, address = network.attach("web-1")
    writes = network.netlink.writes
    assert network.attach("web-1") == (path, address)
    assert network.netlink.writes == writes
    subprocess.run(["nsenter", f"--net={path}", "ip", "addr", "flush", "dev", "eth0"], check=True)
    network.attach("web-1")
    eth0 = ip_json(path, "-4", "addr", "show", "dev", "eth0")[0]
    assert [a["local"] for a in eth0["addr_info"]] == [address]


def test_detach_removes_the_veth_and_the_netns(network: NetworkReconciler) -> None:
    path, _ = network.attach("web-1")
    network.detach("web-1")
    links = [link["ifname"] for link in ip_json(NODE_NETNS, "link", "show")]
    assert network.host_veth("web-1") not in links and not path.exists()


def test_observe_looks_in_proc_only_for_containers_no_longer_desired(
    network: NetworkReconciler, monkeypatch: pytest.MonkeyPatch
) -> None:
    network.attach("web-1")
    network.attach("old-1")
    scanned: list[list[Path]] = []

    def in_use(paths: list[Path]) -> set[Path]:
        scanned.append(paths)
        return set(paths)

    monkeypatch.setattr(network_module, "netns_in_use", in_use)
    both = NodeState(
        node="a", subnet=SUBNET, containers=[ContainerSpec(id=i, image="x") for i in ("web-1", "old-1")]
    )
    assert network.observe(both).in_use == () and scanned == []
    only_web = NodeState(node="a", subnet=SUBNET, containers=[ContainerSpec(id="web-1", image="x")])
    assert network.observe(only_web).in_use == ("old-1",)
    assert scanned == [[network.netns_path("old-1")]]

"""A small internet on one machine for the node-networking tests (and benchmarks).

Namespaces (prefix `shn<hex>`): `inet` holds the "internet" bridge (192.0.2.0/24, itself
192.0.2.100); public nodes sit on it; `r` is a NAT router (192.0.2.254 outside, 203.0.113.1 on
its home bridge, masquerading) in front of the NAT'd nodes — or, with `separate_nats`, one router
per NAT'd node (`r`, `r2`, ...: 192.0.2.254, .253, ... outside), masquerading port-preserving, or
`nat_random` (fully-random source ports: a NAT no hole punching gets through). Each node runs
the real reconcilers (network, WireGuard via wireguard-go, firewall, DNS) against a NodeState
built from shoal.control.mesh. `close()` removes every process, namespace and file it made.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shoal.agent.net.config import NetConfig
from shoal.agent.reconcilers.dns import DnsReconciler
from shoal.agent.reconcilers.firewall import FirewallReconciler
from shoal.agent.reconcilers.network import NetworkReconciler
from shoal.agent.reconcilers.wireguard import WireguardReconciler
from shoal.control.mesh import MeshNode, plan_mesh
from shoal.model.container import ContainerSpec, PortMapping, networks_of
from shoal.model.state import DnsRecord, NetworkMembers, NodeState

CLUSTER = "10.210.0.0/16"
NETNS = Path("/run/netns")


def run(*argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), check=check, capture_output=True, text=True, timeout=timeout)


def nsexec(ns: Path, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return run("nsenter", f"--net={ns}", *argv, check=False, timeout=timeout)


@dataclass
class Node:
    name: str
    index: int
    netns: Path
    underlay: str
    nat: bool
    config: NetConfig
    network: NetworkReconciler | None = None
    wireguard: WireguardReconciler | None = None
    firewall: FirewallReconciler | None = None
    dns: DnsReconciler | None = None
    state: NodeState | None = None
    containers: dict[str, Path] = field(default_factory=dict)  # container id -> netns path

    @property
    def subnet(self) -> str:
        return f"10.210.{self.index}.0/24"

    @property
    def gateway(self) -> str:
        return f"10.210.{self.index}.1"

    @property
    def endpoint(self) -> str | None:
        return None if self.nat else f"{self.underlay}:51820"

    def writes(self) -> tuple[int, int, int, int]:
        assert self.network and self.wireguard and self.firewall and self.dns
        return (
            self.network.netlink.writes,
            self.wireguard.writes,
            self.firewall.nft.transactions,
            self.dns.updates,
        )


class Topology:
    def __init__(
        self, public: list[str], natted: list[str], separate_nats: bool = False, nat_random: bool = False
    ) -> None:
        self.prefix = f"shn{uuid.uuid4().hex[:4]}"
        self.tmp = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-"))
        self.namespaces: list[Path] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self.nodes: dict[str, Node] = {}
        self.networks: dict[str, list[str]] = {}
        self.public, self.natted = public, natted
        self.separate_nats, self.nat_random = separate_nats, nat_random
        self.facts: dict[str, tuple[str | None, str | None]] = {}  # NAT'd node → (observed, lan)
        self.services: dict[str, list[str]] = {}

    def build(self) -> None:
        """The namespaces and the underlay; call inside try/finally with close()."""
        public, natted = self.public, self.natted
        self.inet = self._netns("inet")
        self._inet_bridge()
        self.router = self._router("r", "192.0.2.254")
        for i, name in enumerate(public, start=1):
            self._node(name, i, f"192.0.2.{i}", nat=False)
        for i, name in enumerate(natted, start=len(public) + 1):
            self._node(name, i, f"203.0.113.{i + 1}", nat=True)

    # ---- namespaces and the underlay -------------------------------------------------------
    def _netns(self, name: str) -> Path:
        path = NETNS / f"{self.prefix}-{name}"
        run("ip", "netns", "add", path.name)
        self.namespaces.append(path)
        run("ip", "-n", path.name, "link", "set", "lo", "up")
        return path

    def _inet_bridge(self) -> None:
        inet = self.inet.name
        run("ip", "-n", inet, "link", "add", "br0", "type", "bridge")
        run("ip", "-n", inet, "addr", "add", "192.0.2.100/24", "dev", "br0")
        run("ip", "-n", inet, "link", "set", "br0", "up")

    def _router(self, name: str, wan: str) -> Path:
        router = self._netns(name)
        r = router.name
        self._plug(self.inet.name, "br0", name, r, "wan", f"{wan}/24")
        run("ip", "-n", r, "link", "add", "home", "type", "bridge")
        run("ip", "-n", r, "addr", "add", "203.0.113.1/24", "dev", "home")
        run("ip", "-n", r, "link", "set", "home", "up")
        nsexec(router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        masquerade = ["masquerade", "fully-random"] if self.nat_random else ["masquerade"]
        for command in (
            ["add", "table", "ip", "nat"],
            ["add", "chain", "ip", "nat", "post", "{ type nat hook postrouting priority 100 ; }"],
            ["add", "rule", "ip", "nat", "post", "oifname", "wan", *masquerade],
            # a NAT router drops unsolicited traffic from the internet to the home network
            ["add", "table", "ip", "guard"],
            ["add", "chain", "ip", "guard", "block", "{ type filter hook forward priority 0 ; }"],
            ["add", "rule", "ip", "guard", "block", "iifname", "wan", "ct", "state", "new", "drop"],
            # ... and to itself: a refused packet leaves no conntrack entry that would take the
            # port a later outgoing flow is mapped to (so simultaneous opens punch through)
            ["add", "chain", "ip", "guard", "in", "{ type filter hook input priority 0 ; }"],
            ["add", "rule", "ip", "guard", "in", "iifname", "wan", "ct", "state", "new", "drop"],
        ):
            assert nsexec(router, "nft", *command).returncode == 0, command
        return router

    def _plug(self, ns: str, bridge: str, tag: str, other: str, ifname: str, cidr: str) -> None:
        run(
            "ip", "-n", ns, "link", "add", f"to-{tag}", "type", "veth", "peer", "name", ifname, "netns", other
        )
        run("ip", "-n", ns, "link", "set", f"to-{tag}", "master", bridge, "up")
        run("ip", "-n", other, "addr", "add", cidr, "dev", ifname)
        run("ip", "-n", other, "link", "set", ifname, "up")

    def _node(self, name: str, index: int, underlay: str, nat: bool) -> None:
        path = self._netns(name)
        if nat:
            router = self._nat_for(name)
            self._plug(router.name, "home", name, path.name, "eth0", f"{underlay}/24")
            run("ip", "-n", path.name, "route", "add", "default", "via", "203.0.113.1")
        else:
            self._plug(self.inet.name, "br0", name, path.name, "eth0", f"{underlay}/24")
        config = NetConfig(
            state_dir=self.tmp / name / "state",
            run_dir=self.tmp / name / "run",
            node_netns=path,
            netns_prefix=f"{self.prefix}{name}",
            wg_interface=f"{self.prefix}w{name}",
            dns_timeout_s=1.0,
        )
        self.nodes[name] = Node(name, index, path, underlay, nat, config)

    def _nat_for(self, name: str) -> Path:
        """The router in front of a NAT'd node: the one router, or its own one."""
        k = self.natted.index(name)
        if not self.separate_nats or k == 0:
            return self.router
        return self._router(f"r{k + 1}", f"192.0.2.{254 - k}")

    def learn_endpoints(self) -> None:
        """What the server learns from reports: where public node `a` sees each NAT'd node's
        packets come from, and each NAT'd node's own address; the states are rebuilt with them."""
        observer = self.nodes[self.public[0]].wireguard
        assert observer is not None
        seen = {p.public_key: p.endpoint for p in observer.backend.get().peers.values()}
        for name in self.natted:
            node = self.nodes[name]
            key = node.wireguard.public_key  # type: ignore[union-attr]
            self.facts[name] = (seen.get(key), f"{node.underlay}:{node.config.wg_port}")
        self.states = self.desired(self.services)

    # ---- the shoal side --------------------------------------------------------------------
    def start(self, services: dict[str, list[str]], networks: dict[str, list[str]] | None = None) -> None:
        """Reconcilers on every node; `services`: node -> container ids ("web-1" serves web);
        `networks`: container id -> the Compose networks it is on (default: all on one)."""
        self.networks = networks or {}
        self.services = services
        for node in self.nodes.values():
            node.network = NetworkReconciler(node.config, node.subnet)
            node.wireguard = WireguardReconciler(node.config)
            node.firewall = FirewallReconciler(node.config)
            node.dns = DnsReconciler(node.config)
            for cid in services.get(node.name, []):
                node.containers[cid], _ = node.network.attach(cid, hostname=cid)
        self.states = self.desired(services)
        self.reconcile_all()

    def desired(self, services: dict[str, list[str]]) -> dict[str, NodeState]:
        """Every node's state: its containers, the mesh, DNS, and the members of each network."""
        members = [
            MeshNode(
                n.name,
                n.subnet,
                n.wireguard.public_key,  # type: ignore[union-attr]
                n.endpoint,
                observed=self.facts.get(n.name, (None, None))[0],
                lan=self.facts.get(n.name, (None, None))[1],
            )
            for n in self.nodes.values()
        ]
        planned = plan_mesh(members)
        meshes = {name: planned.of(name) for name in planned.nodes}
        records: dict[str, list[str]] = {}
        specs: dict[str, list[ContainerSpec]] = {}
        on_net: dict[str, list[str]] = {}
        for node in self.nodes.values():
            assert node.network is not None
            for cid in services.get(node.name, []):
                ip = node.network.ipam.allocations[cid]
                service, replica = cid.rsplit("-", 1)
                records.setdefault(f"{service}.shoal.internal", []).append(ip)
                records[f"{replica}.{service}.shoal.internal"] = [ip]
                ports = [PortMapping(host_port=8080, container_port=80)]
                nets = self.networks.get(cid, [])
                spec = ContainerSpec(id=cid, service=service, image="x", ip=ip, ports=ports, networks=nets)
                specs.setdefault(node.name, []).append(spec)
                for key in networks_of(spec):
                    on_net.setdefault(key, []).append(ip)
        dns = [DnsRecord(name=k, addresses=v) for k, v in sorted(records.items())]
        wire = [NetworkMembers(key=k, members=sorted(v)) for k, v in sorted(on_net.items())]
        return {
            n.name: NodeState(
                node=n.name,
                subnet=n.subnet,
                cluster_cidr=CLUSTER,
                peers=meshes[n.name].peers,
                relay=meshes[n.name].relay,
                relays=meshes[n.name].relays,
                relayed=meshes[n.name].relayed,
                dns=dns,
                containers=specs.get(n.name, []),
                networks=wire,
            )
            for n in self.nodes.values()
        }

    def reconcile(self, node: Node) -> list[bool]:
        """One pass of every step; which of them had something to do."""
        assert node.network and node.wireguard and node.firewall and node.dns
        state = self.states[node.name]
        return [
            not node.network.reconcile(state).empty,
            not node.wireguard.reconcile(state).empty,
            not node.firewall.reconcile(state, node.network.ipam.allocations).empty,
            node.dns.reconcile(state, node.network.ipam.allocations) is not None,
        ]

    def reconcile_all(self) -> dict[str, list[bool]]:
        return {name: self.reconcile(node) for name, node in self.nodes.items()}

    def spawn(self, ns: Path, *argv: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            ["nsenter", f"--net={ns}", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.procs.append(proc)
        return proc

    # ---- teardown --------------------------------------------------------------------------
    def close(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(timeout=10)
        for node in self.nodes.values():
            self._close_node(node)
        for path in reversed(self.namespaces):
            run("ip", "netns", "del", path.name, check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _close_node(self, node: Node) -> None:
        with contextlib.suppress(Exception):
            if node.dns:
                node.dns.stop()
        with contextlib.suppress(Exception):
            if node.wireguard:
                node.wireguard.stop()
        for cid in list(node.containers):
            with contextlib.suppress(Exception):
                assert node.network is not None
                node.network.detach(cid)
        if node.network:
            node.network.close()
        for leftover in NETNS.glob(f"{node.config.netns_prefix}-*"):
            run("ip", "netns", "del", leftover.name, check=False)


@contextlib.contextmanager
def running_cluster(
    services: dict[str, list[str]], networks: dict[str, list[str]] | None = None, **nats: bool
) -> Iterator[Topology]:
    """Nodes a, b public and c, d behind a NAT router, running ``services`` (node -> container
    ids) on ``networks`` (container id -> network keys); ``nats``: Topology's NAT options.
    Everything is removed on the way out."""
    if shutil.which("wireguard-go") is None:
        pytest.skip("wireguard-go is not installed")
    topology = Topology(["a", "b"], ["c", "d"], **nats)
    try:
        topology.build()
        topology.start(services, networks)
        yield topology
    finally:
        topology.close()

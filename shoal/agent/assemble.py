"""Wiring: an `Agent` (agent.loop) built from the agent config and the node's join record.

Used by `shoal agent start` and by tests that run a real agent. Adapts the parts built
alongside the loop (runtime, image store, API client, ingress) to the small interfaces the
loop and the containers reconciler need; reconcilers that are not present yet are skipped.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from shoal.agent.config import AgentConfig, NodeRecord, save_servers
from shoal.agent.health import PROBE_OUTPUT_MAX
from shoal.agent.httpd import AgentHttpd, create_app
from shoal.agent.images import ImageStore, PulledImage
from shoal.agent.images.limits import Deadline, UnpackLimits
from shoal.agent.loop import Agent, ControlClient, Step
from shoal.agent.memory import TrimStep
from shoal.agent.net.config import NetConfig
from shoal.agent.reconcilers.containers import Attached, ContainersReconciler, Seen
from shoal.agent.reconcilers.dns import DnsReconciler
from shoal.agent.reconcilers.firewall import FirewallReconciler
from shoal.agent.reconcilers.network import NetworkReconciler
from shoal.agent.reconcilers.secretfs import SecretFs
from shoal.agent.reconcilers.wireguard import WireguardReconciler
from shoal.agent.runtime import Runtime, RuntimeConfig
from shoal.client import Client
from shoal.errors import NotFound
from shoal.model.container import ContainerSpec, PullPolicy
from shoal.model.registry import RegistryAuth
from shoal.model.state import NodeState
from shoal.model.status import PeerStatus

log = logging.getLogger(__name__)


class RuntimeAdapter:
    """shoal.agent.runtime.Runtime as the containers reconciler and the loop use it."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._exits_seen = -1  # mtime of conmon's exit-file dir at the last supervise
        self._waiting = False  # a restart back-off is pending

    def observe(self) -> dict[str, Seen]:
        return {
            c.id: Seen(
                c.id,
                c.state,
                c.pid,
                None if c.lost else c.exit_code,  # lost: the reconciler starts it afresh
                c.started_at,
                c.restarts,
                c.spec.image_digest,
                c.spec.healthcheck,
                c.spec.ip,
            )
            for c in self.runtime.list()
        }

    def start(
        self,
        spec: ContainerSpec,
        image: PulledImage,
        attached: Attached,
        secrets_dir: Path | None,
        *,
        before_create: Callable[[], None] | None = None,
        before_start: Callable[[], None] | None = None,
    ) -> None:
        self.runtime.create_and_start(
            spec,
            image.config,
            image.layer_dirs,
            attached.netns,
            files=attached.files,
            secrets_dir=secrets_dir,
            before_create=before_create,
            before_start=before_start,
        )

    def stop(self, container_id: str, grace_s: float) -> None:
        with contextlib.suppress(NotFound):
            self.runtime.stop(container_id, grace_s)

    def remove(self, container_id: str, grace_s: float) -> None:
        self.stop(container_id, grace_s)
        with contextlib.suppress(NotFound):
            self.runtime.delete(container_id)

    def exec_probe(self, container_id: str, argv: list[str], timeout_s: float) -> tuple[int, str]:
        result = self.runtime.exec(container_id, argv, timeout_s, PROBE_OUTPUT_MAX)
        return result.exit_code, result.output

    def supervise(self, force: bool = True, boot: bool = False) -> list[str]:
        """Restart policies and log rotation; unforced, only when an exit or a back-off is due.
        `boot`: the agent's first tick (``always`` brings back what its stop left stopped)."""
        marker = _mtime_ns(self.runtime.exit_dir)
        if not force and marker == self._exits_seen and not self._waiting:
            return []
        actions = self.runtime.supervise(boot=boot, keep_lost=True)
        fresh_exit = marker != self._exits_seen  # a wait then is news: the replica is down
        self._exits_seen, self._waiting = marker, any(a.action == "wait" for a in actions)
        return [
            f"{a.id}: {a.action} {a.detail}".strip()
            for a in actions
            if a.action != "rotate" and (a.action != "wait" or fresh_exit)
        ]


@dataclass
class ImagesAdapter:
    """One ImageStore per set of insecure registries (the state names them)."""

    root: Path
    base_insecure: tuple[str, ...] = ()
    auth_dir: Path | None = None  # per-pull auth files (tmpfs): agent.images.auth
    limits: UnpackLimits = field(default_factory=UnpackLimits)
    _stores: dict[tuple[str, ...], ImageStore] = field(default_factory=dict)

    def store(self, insecure: Sequence[str] = ()) -> ImageStore:
        key = tuple(sorted({*self.base_insecure, *insecure}))
        if key not in self._stores:
            self._stores[key] = ImageStore(self.root, None, key, auth_dir=self.auth_dir, limits=self.limits)
        return self._stores[key]

    def pull(
        self,
        ref: str,
        insecure: Sequence[str],
        policy: PullPolicy = "always",
        logins: Sequence[RegistryAuth] = (),
        deadline: Deadline | None = None,
    ) -> PulledImage:
        return self.store(insecure).pull(ref, policy, logins, deadline)

    def gc(self, in_use: Iterable[str]) -> list[str]:
        return self.store().gc(in_use)


def _mtime_ns(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return 0


def runtime_config(config: AgentConfig) -> RuntimeConfig:
    return RuntimeConfig(
        state_dir=config.runtime_dir,
        bundles_dir=config.bundles_dir,
        logs_dir=config.logs_dir,
        volumes_dir=config.volumes_dir,
        cgroup_parent=config.cgroup_parent,
        runc_binary=config.runc_binary,
        conmon_binary=config.conmon_binary,
        init_binary=config.init_binary,
        forbidden_binds=(str(config.data_dir), str(config.run_dir), str(config.runtime_dir)),
        pids_limit=config.pids_limit,
        tmpfs_max_bytes=config.tmpfs_max_bytes,
    )


def build_containers(config: AgentConfig, network: NetworkAdapter | None = None) -> ContainersReconciler:
    runtime = RuntimeAdapter(Runtime(runtime_config(config)))
    limits = UnpackLimits(config.unpack_max_bytes, config.unpack_max_entries, config.unpack_max_ratio)
    images = ImagesAdapter(
        config.images_dir, config.insecure_registries, config.run_dir / "pull-auth", limits
    )
    return ContainersReconciler(
        runtime,
        images,
        SecretFs(config.secrets_dir),
        network,
        image_keep_s=config.image_keep_s,
        pull_timeout_s=config.pull_timeout_s,
    )


def management_ports(config: AgentConfig, server_url: str = "") -> tuple[int, ...]:
    """The node's own control ports, closed to other networks: the agent's, the API's (the
    configured one and the port of the URL the agent joined), the managed database's."""
    joined = urlsplit(server_url).port if server_url else None
    ports = (config.agent_port, config.api_port, joined or config.api_port, config.database_port)
    return tuple(dict.fromkeys(ports))


def net_config(config: AgentConfig, server_url: str = "") -> NetConfig:
    return NetConfig(
        state_dir=config.net_state_dir,
        run_dir=config.run_dir / "net",
        netns_dir=config.netns_dir,
        bridge=config.bridge,
        wg_interface=config.wg_interface,
        wg_port=config.wg_port,
        wg_socket_dir=config.wg_socket_dir,
        wg_key_path=config.wg_key_file,
        nft_table=config.nft_table,
        dns_port=config.dns_port,
        upstream_dns=config.upstream_dns,
        management_ports=management_ports(config, server_url),
    )


@dataclass
class NetworkAdapter:
    """The network reconciler as the containers reconciler attaches and detaches through it."""

    network: NetworkReconciler

    def attach(self, spec: ContainerSpec) -> Attached:
        """Its netns, address and files now; the veth is plugged in by `Attached.plug`."""
        prepared = self.network.prepare(
            spec.id, spec.ip, spec.hostname or "", spec.extra_hosts, spec.dns_search, project=spec.project
        )
        files = self.network.container_files(spec.id)
        mounts = {
            "/etc/hosts": files.hosts,
            "/etc/hostname": files.hostname,
            "/etc/resolv.conf": files.resolv_conf,
        }
        return Attached(str(prepared.netns), prepared.address, mounts, prepared.plug)

    def detach(self, container_id: str) -> None:
        self.network.detach(container_id)


@dataclass
class Networking:
    """The node's networking reconcilers, built when the agent manages the network."""

    bridge: NetworkReconciler
    wireguard: WireguardReconciler
    firewall: FirewallReconciler
    dns: DnsReconciler

    def pre_steps(self) -> list[Step]:
        """Before containers: the bridge their veths plug into."""
        return [("network", self.bridge.reconcile)]

    def steps(self) -> list[Step]:
        """After containers, what a replica's report waits for: firewall (with the addresses IPAM
        gave), then DNS."""
        return [
            ("firewall", lambda state: self.firewall.reconcile(state, dict(self.bridge.ipam.allocations))),
            ("dns", lambda state: self.dns.reconcile(state, dict(self.bridge.ipam.allocations))),
        ]

    def late_steps(self) -> list[Step]:
        """After the report: the tunnel (the mesh changes when nodes do, never for a replica; the
        firewall matches its link by name, so it needs no link yet)."""
        return [("wireguard", self.wireguard.reconcile)]

    def ticks(self) -> list[Step]:
        """Every supervise tick between passes: the relay watch (a silent relay is left within
        seconds, on the saved state, with or without the server)."""
        return [("relay-watch", self.wireguard.watch)]

    def stop(self) -> None:
        """On agent exit: the DNS server thread ends; links, rules and wireguard-go stay up."""
        self.dns.stop()

    def peers(self, agent: Agent) -> Callable[[], list[PeerStatus]]:
        def read() -> list[PeerStatus]:
            known = [*agent.state.peers, *agent.state.relayed] if agent.state else []
            names = {p.public_key: p.name for p in known}
            return self.wireguard.peer_status(names, agent.state.relayed if agent.state else [])

        return read


def build_networking(config: AgentConfig, node: NodeRecord) -> Networking | None:
    if not config.manage_network:
        return None
    net = net_config(config, node.server)
    return Networking(
        NetworkReconciler(net, node.subnet),
        WireguardReconciler(net),
        FirewallReconciler(net),
        DnsReconciler(net),
    )


def ingress_step(config: AgentConfig, node: NodeRecord, client: ControlClient) -> Step | None:
    """The ingress reconciler as a loop step (None when that module is absent); it asks the server
    to sign this node's intermediate CA (internal TLS)."""
    try:
        ingress = importlib.import_module("shoal.agent.reconcilers.ingress")
        caddy = importlib.import_module("shoal.agent.render.caddy")
    except ModuleNotFoundError:
        return None
    ports = caddy.CaddyPorts(http=config.http_port, https=config.https_port)
    settings = ingress.IngressConfig(
        state_dir=config.caddy_dir,
        admin_socket=config.caddy_admin_socket,
        node=node.name,
        caddy_binary=config.caddy_binary,
        ports=ports,
    )
    sign = getattr(client, "sign_ingress_ca", None)  # a client without it (a test's): no signing
    signer = None if sign is None else functools.partial(sign, node.name)
    return ("ingress", ingress.IngressReconciler(settings, signer).reconcile)


@dataclass
class HttpdStep:
    """Serves the agent endpoints once the overlay address exists (retried each pass until then)."""

    httpd: AgentHttpd
    started: bool = False

    def __call__(self, state: NodeState) -> None:
        if self.started:
            return
        try:
            self.httpd.start()
        except OSError as exc:
            log.info("agent endpoints not up yet on %s:%d: %s", self.httpd.host, self.httpd.port, exc)
            return
        self.started = True


def httpd_step(config: AgentConfig, node: NodeRecord, runtime: Runtime, agent: Agent) -> Step:
    app = create_app(runtime, node.agent_secret, agent.metrics.render)
    step = HttpdStep(AgentHttpd(app, config.agent_listen or node.overlay_ip, config.agent_port))
    agent.on_stop.append(step.httpd.stop)
    return ("httpd", step)


def build_agent(config: AgentConfig, node: NodeRecord, client: ControlClient | None = None) -> Agent:
    """The whole agent of this machine: reconcilers in order, then the endpoints."""
    if client is None:
        client = Client(
            node.server,
            node.credential,
            config.ca_file,
            servers=node.servers,
            on_servers=lambda urls: save_servers(config, node, urls),
        )
    networking = build_networking(config, node)
    containers = build_containers(config, NetworkAdapter(networking.bridge) if networking else None)
    agent = Agent(config=config, node=node, client=client, containers=containers)
    if networking is not None:
        agent.pre_steps += networking.pre_steps()
        agent.steps += networking.steps()
        agent.late_steps += networking.late_steps()
        agent.ticks += networking.ticks()
        agent.peers = networking.peers(agent)
        agent.lan_endpoint = lambda: networking.wireguard.lan_endpoint
        agent.on_stop.append(networking.stop)
    agent.late_steps += [s for s in (ingress_step(config, node, client),) if s is not None]
    assert isinstance(containers.runtime, RuntimeAdapter)
    agent.late_steps.append(httpd_step(config, node, containers.runtime.runtime, agent))
    agent.late_steps.append(("memory", TrimStep()))
    return agent

"""Ingress reconciler: runs Caddy on ingress nodes and keeps its whole config current.

Last step of the agent's reconcile (images → containers → network → firewall → dns → ingress).
observe() reads Caddy's running config, plan() compares fingerprints (pure), apply() starts,
loads or stops. A run with nothing changed makes no load.

Each load makes Caddy open a new SO_REUSEPORT socket and close the old one; a connection still in
the old socket's accept queue would be reset. Before every start or load the reconciler sets
net.ipv4.tcp_migrate_req in Caddy's netns, so the kernel hands those connections to the new socket.

A pass ends only once Caddy answers a TLS handshake for every host of the state (it issues a new
host's certificate after the load): a request for a host the agent reports applied never meets a
TLS alert.

With internal TLS, Caddy signs with this node's own intermediate (reconcilers.ingress_ca), under
the cluster's ingress root whose certificate the state carries; the root's key is never here.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from shoal.agent.net.nsthread import in_netns, write_sysctl
from shoal.agent.reconcilers.ingress_ca import Intermediate, NodeAuthority, Signer
from shoal.agent.render.caddy import CaddyPaths, CaddyPorts, fingerprint, render_caddy
from shoal.agent.sys.caddy import CaddyAdmin, CaddyError, CaddyProcess, CaddyProcessConfig, serves_tls
from shoal.model.state import IngressSettings, NodeState

log = logging.getLogger(__name__)
Action = Literal["none", "start", "load", "stop"]
MIGRATE_SYSCTL = "net/ipv4/tcp_migrate_req"
# how long a pass waits for Caddy to have a new host's certificate (internal CA: milliseconds;
# ACME: the next passes try again, and the state does not count as applied until then)
CERT_WAIT_S = 5.0
CERT_POLL_S = 0.05


@dataclass(frozen=True)
class IngressConfig:
    state_dir: Path  # the node's caddy dir: storage, pid, CA files
    admin_socket: Path
    node: str = ""  # this node's name, in its intermediate CA's request
    caddy_binary: str = "caddy"
    ports: CaddyPorts = field(default_factory=CaddyPorts)
    argv_prefix: tuple[str, ...] = ()
    netns: Path | None = None  # the netns Caddy listens in (None: the agent's own)


@dataclass(frozen=True)
class ObservedIngress:
    running: bool
    fingerprint: str | None  # of the config Caddy is running, None if not running


@dataclass(frozen=True)
class IngressPlan:
    action: Action
    config: dict[str, Any] | None = None


def plan_ingress(desired: dict[str, Any] | None, observed: ObservedIngress) -> IngressPlan:
    """What to do to bring Caddy from `observed` to `desired` (None: no Caddy on this node)."""
    if desired is None:
        return IngressPlan("stop") if observed.running else IngressPlan("none")
    if not observed.running:
        return IngressPlan("start", desired)
    if observed.fingerprint == fingerprint(desired):
        return IngressPlan("none")
    return IngressPlan("load", desired)


class IngressReconciler:
    def __init__(self, config: IngressConfig, sign: Signer | None = None) -> None:
        self.config = config
        self.authority = NodeAuthority(config.state_dir / "ca", config.node, sign)
        self.process = CaddyProcess(
            CaddyProcessConfig(config.caddy_binary, config.state_dir, config.admin_socket, config.argv_prefix)
        )
        self.loads = 0  # whole-config loads (start included): a no-change run adds none
        self.certified: set[str] = set()  # hosts this Caddy has answered a TLS handshake for
        self._admin: CaddyAdmin | None = None  # one client for the agent's life: a pass costs one GET

    @property
    def admin(self) -> CaddyAdmin:
        if self._admin is None:
            self._admin = CaddyAdmin(self.config.admin_socket)
        return self._admin

    def paths(self, intermediate: Intermediate | None = None) -> CaddyPaths:
        """Caddy's files; with an intermediate, the cluster root's certificate and that one's."""
        base = CaddyPaths(str(self.config.admin_socket), str(self.config.state_dir / "storage"))
        if intermediate is None:
            return base
        return replace(
            base,
            ca_cert_file=str(self.root_file),
            intermediate_cert_file=str(intermediate.cert_file),
            intermediate_key_file=str(intermediate.key_file),
        )

    @property
    def root_file(self) -> Path:
        return self.config.state_dir / "ca" / "root.crt"

    def desired(self, state: NodeState, intermediate: Intermediate | None = None) -> dict[str, Any] | None:
        settings = state.ingress_settings
        if settings is None:
            return None
        return render_caddy(state.ingress, settings, self.paths(intermediate), self.config.ports)

    def intermediate(self, settings: IngressSettings | None) -> Intermediate | None:
        """This node's intermediate under the cluster root (internal TLS with a root given), asked
        of the server when missing or due; CaddyError when there is none yet."""
        if settings is None or settings.tls != "internal" or not settings.ca_cert_pem:
            return None
        held = self.authority.current(settings.ca_cert_pem)
        if held is None:
            raise CaddyError("no intermediate CA for this ingress node yet: the server has not signed one")
        _write_private(self.root_file, settings.ca_cert_pem)
        return held

    def observe(self) -> ObservedIngress:
        if self.process.pid() is None:
            return ObservedIngress(False, None)
        running = self.admin.running_config()
        if running is None:
            return ObservedIngress(False, None)
        return ObservedIngress(True, fingerprint(running))

    def apply(self, plan: IngressPlan) -> None:
        if plan.action == "stop":
            self.process.stop()
        elif plan.config is not None:
            self._start_or_load(plan)

    def reconcile(self, state: NodeState) -> IngressPlan:
        """Bring Caddy to the state; done only once it has a certificate for every host, so a
        state counted as applied serves each of its hosts (raises CaddyError otherwise)."""
        desired = self.desired(state, self.intermediate(state.ingress_settings))
        plan = plan_ingress(desired, self.observe())
        self.apply(plan)
        if state.ingress_settings is not None:
            self.wait_for_certificates(sorted({route.host for route in state.ingress}))
        return plan

    def wait_for_certificates(self, hosts: list[str]) -> None:
        """Until Caddy answers a handshake for each host not yet seen to (CERT_WAIT_S at most)."""
        deadline = time.monotonic() + CERT_WAIT_S
        for host in (h for h in hosts if h not in self.certified):
            while not self._serves(host):
                if time.monotonic() >= deadline:
                    raise CaddyError(f"caddy has no certificate for {host} yet")
                time.sleep(CERT_POLL_S)
            self.certified.add(host)

    def _serves(self, host: str) -> bool:
        return in_netns(self.config.netns, lambda: serves_tls(self.config.ports.https, host))

    def remove(self) -> None:
        self.process.stop()
        if self._admin is not None:
            self._admin.close()
            self._admin = None

    def _start_or_load(self, plan: IngressPlan) -> None:
        assert plan.config is not None
        self._let_kernel_migrate_queued_connections()
        if plan.action == "start":
            self.certified.clear()  # a new process: its certificates are loaded afresh
            self.process.start(plan.config)
        else:
            self.admin.load(plan.config)
        self.loads += 1

    def _let_kernel_migrate_queued_connections(self) -> None:
        try:
            write_sysctl(self.config.netns, MIGRATE_SYSCTL, "1")
        except OSError as exc:  # kernels before 5.14 lack it: a load may then reset a queued connection
            log.warning("cannot set %s: %s", MIGRATE_SYSCTL, exc)


def _write_private(path: Path, text: str) -> None:
    if path.exists() and path.read_text() == text:
        return
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    tmp.replace(path)

"""NetConfig: every name, path and port the node-networking reconcilers touch.

Built by the agent from its AgentConfig (or directly by tests), so several agents — each in its
own "node" network namespace — can share one machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shoal.model.addressing import CLUSTER_DOMAIN
from shoal.model.ports import AGENT_PORT, API_PORT, DATABASE_PORT, DNS_PORT, WIREGUARD_PORT

# 1420 = 1500 (underlay) - 80 (WireGuard over IPv6 worst case: 40 IP + 8 UDP + 32 WG). Containers
# and the bridge use the same MTU as the tunnel, so a full-size container packet never needs
# fragmenting on its way into WireGuard.
WG_MTU = 1420
BRIDGE = "shoal0"  # the containers' bridge on a node
WG_INTERFACE = "shoal-wg"  # the node's WireGuard link


@dataclass(frozen=True)
class NetConfig:
    """Defaults are those of a real machine; tests override names, dirs and the node netns."""

    state_dir: Path = Path("/var/lib/shoal/net")  # ipam.json, per-container files, wg key
    run_dir: Path = Path("/run/shoal/net")  # wireguard-go pid and log
    node_netns: Path | None = None  # the node's own netns; None: the agent's
    netns_dir: Path = Path("/run/netns")  # container network namespaces
    bridge: str = BRIDGE
    netns_prefix: str = "shoal"  # container netns: <netns_dir>/<prefix>-<container id>
    veth_prefix: str = "shv"  # host side of a container's veth: prefix + short hash of its id
    mtu: int = WG_MTU
    wg_interface: str = WG_INTERFACE
    wg_port: int = WIREGUARD_PORT
    wg_socket_dir: Path = Path("/run/wireguard")  # where wireguard-go puts IFNAME.sock
    wg_go_binary: str = "wireguard-go"
    nft_table: str = "shoal"
    dns_port: int = DNS_PORT
    dns_domain: str = CLUSTER_DOMAIN  # the server names records under it (control/desired.py)
    upstream_dns: tuple[str, ...] = ()  # "ip" or "ip:port"
    dns_timeout_s: float = 2.0
    management_ports: tuple[int, ...] = (AGENT_PORT, API_PORT, DATABASE_PORT)
    wg_key_path: Path | None = None  # the key registered at join; None: <state_dir>/wireguard.key

    @property
    def ipam_file(self) -> Path:
        return self.state_dir / "ipam.json"

    @property
    def files_dir(self) -> Path:
        return self.state_dir / "containers"

    @property
    def wg_key_file(self) -> Path:
        return self.wg_key_path or self.state_dir / "wireguard.key"

    @property
    def wg_socket(self) -> Path:
        return self.wg_socket_dir / f"{self.wg_interface}.sock"

    def netns_path(self, name: str) -> Path:
        return self.netns_dir / name

"""The ports shoal itself uses on a node: one definition of each default (model: pure data).

The server's API (`server init --listen`), the agent's logs/exec port, the mesh's WireGuard port,
the managed PostgreSQL and SSH. The agent's firewall keeps containers and other networks off the
management ones; the deploy check refuses a published port that would take one of them
(`reserved_ports`), and the scheduler keeps 80/443 free on ingress nodes.
"""

from __future__ import annotations

API_PORT = 7443
AGENT_PORT = 7946
WIREGUARD_PORT = 51820
DATABASE_PORT = 5432
SSH_PORT = 22
DNS_PORT = 53  # each node's DNS server, on its bridge address
HTTP_PORT = 80
HTTPS_PORT = 443

INGRESS_PORTS = (f"{HTTP_PORT}/tcp", f"{HTTPS_PORT}/tcp", f"{HTTPS_PORT}/udp")  # Caddy (HTTP/3 on udp)


def port_key(port: int, protocol: str) -> str:
    """`8080/tcp`: how a published port is named in plans and messages."""
    return f"{port}/{protocol}"


def reserved_ports(
    api_port: int = API_PORT, agent_port: int = AGENT_PORT, wg_port: int = WIREGUARD_PORT
) -> dict[str, str]:
    """Ports no deploy may publish on any node, each with what holds it."""
    return {
        port_key(SSH_PORT, "tcp"): "SSH",
        port_key(wg_port, "udp"): "the mesh's WireGuard port",
        port_key(api_port, "tcp"): "the shoal API",
        port_key(agent_port, "tcp"): "the shoal agent",
    }

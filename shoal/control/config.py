"""The server's configuration: `server.json` in the data dir, written by `init`, read by `start`."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, ValidationError

from shoal.errors import ConfigError, first_line
from shoal.model.addressing import CLUSTER_CIDR
from shoal.model.ports import AGENT_PORT, API_PORT, port_key, reserved_ports

CONFIG_NAME = "server.json"
REBALANCE_SETTLE_S = 30.0  # `rebalance: auto` services stay uneven this long before a move


class ServerConfig(BaseModel):
    model_config = ConfigDict(extra="ignore")

    data_dir: Path
    dsn: str
    listen: str = f"0.0.0.0:{API_PORT}"
    advertise: str = f"https://127.0.0.1:{API_PORT}"
    cluster_cidr: str = CLUSTER_CIDR
    managed_postgres: bool = False
    server_node: str = ""  # the name the server machine's own agent joins with
    node_name: str = ""  # this server's machine in `shoal server ls` (empty: server_node, hostname)
    acme_email: str = ""
    acme_ca: str = ""  # ACME directory URL; empty: Let's Encrypt
    ingress_tls: str = "acme"  # "acme" in production; "internal": a cluster-wide root made at init
    ingress_host: str = ""  # publish the API and web UI through ingress under this host
    agent_port: int = AGENT_PORT  # where agents serve logs and exec on their overlay address
    heartbeat_s: float = 1.0
    grace_s: float = 5.0
    controller_interval_s: float = 0.5
    rebalance_settle_s: float = REBALANCE_SETTLE_S
    dns_interval_s: float = 1.0  # at most one cluster-wide DNS/ingress refresh per interval
    node_threads: int = 320  # the node lane: every node's long-poll plus its reports (serve.py)
    people_threads: int = 64  # the people lane: the CLI, the web UI, join
    streams_per_principal: int = 8  # event streams, followed logs, exec, UI streams of one token
    people_streams: int = 48  # of all people together: the rest of the lane stays for short requests
    requests_per_node: int = 4  # concurrent requests of one node credential (a poll, a report, spare)
    stream_max_s: float = 3600.0  # an event stream or followed log ends then (clients resume)
    caddy_binary: str = "caddy"
    insecure_registries: list[str] = []
    controller: bool = True

    @property
    def ca_cert(self) -> Path:
        return self.data_dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.data_dir / "ca.key"

    @property
    def cert(self) -> Path:
        return self.data_dir / "server.crt"

    @property
    def key(self) -> Path:
        return self.data_dir / "server.key"

    @property
    def ingress_ca_cert(self) -> Path:
        return self.data_dir / "ingress-ca.crt"

    @property
    def ingress_ca_key(self) -> Path:
        return self.data_dir / "ingress-ca.key"

    @property
    def secrets_key(self) -> Path:
        return self.data_dir / "secrets.key"

    @property
    def pg_dir(self) -> Path:
        return self.data_dir / "postgres"

    def listen_address(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        if not port.isdigit():
            raise ConfigError(f"--listen {self.listen}: expected HOST:PORT")
        return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104

    def reserved_ports(self) -> dict[str, str]:
        """Host ports no deploy may publish: SSH, WireGuard, the API (listened on and advertised),
        the agents' port."""
        ports = reserved_ports(api_port=self.listen_address()[1], agent_port=self.agent_port)
        advertised = urlsplit(self.advertise).port
        if advertised is not None:
            ports.setdefault(port_key(advertised, "tcp"), "the shoal API")
        return ports


def save(config: ServerConfig) -> Path:
    path = config.data_dir / CONFIG_NAME
    path.write_text(config.model_dump_json(indent=2) + "\n")
    path.chmod(0o600)
    return path


def load(data_dir: Path) -> ServerConfig:
    path = data_dir / CONFIG_NAME
    try:
        return ServerConfig.model_validate(json.loads(path.read_text()))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path} not found: run `shoal server init` first") from exc
    except (ValueError, ValidationError) as exc:
        raise ConfigError(f"{path}: {first_line(exc)}") from exc

"""The agent's configuration and its join record: the first thing `shoal agent start` reads.

`shoal join` writes both into the data dir (0600): `agent.json` (every path, port, interface
name and cgroup parent the agent uses, with defaults for a real machine, so several agents can
share one machine in tests) and `node.json` (what the server said at join: name, credential,
agent secret, subnet, overlay address). The cluster CA sits beside them as `ca.crt`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shoal.agent.net.config import BRIDGE, WG_INTERFACE
from shoal.errors import ConfigError
from shoal.model.ports import (
    AGENT_PORT,
    API_PORT,
    DATABASE_PORT,
    DNS_PORT,
    HTTP_PORT,
    HTTPS_PORT,
    WIREGUARD_PORT,
)

AGENT_FILE = "agent.json"
NODE_FILE = "node.json"
CA_FILE = "ca.crt"
WG_KEY_FILE = "net/wireguard.key"  # under the networking state dir (data_dir/net)


@dataclass(frozen=True)
class AgentConfig:
    """Everything the agent touches on its machine; defaults are for a real machine."""

    data_dir: Path = Path("/var/lib/shoal")
    run_dir: Path = Path("/run/shoal")
    runtime_dir: Path = Path("/run/shoal/runtime")  # runc --root (runtime_dir/runc), conmon exit files
    runc_binary: str = "runc"
    conmon_binary: str = "conmon"
    init_binary: str = "/usr/bin/tini-static"  # Compose `init: true`; static, so it runs in any image
    cgroup_parent: str = "/shoal"
    pids_limit: int = 4096  # per container, unless deploy.resources.limits.pids says otherwise
    tmpfs_max_bytes: int = 256 << 20  # every tmpfs and /dev/shm of a container is capped at this
    netns_dir: Path = Path("/run/netns")
    bridge: str = BRIDGE
    wg_interface: str = WG_INTERFACE
    wg_port: int = WIREGUARD_PORT
    wg_socket_dir: Path = Path("/run/wireguard")
    nft_table: str = "shoal"
    dns_port: int = DNS_PORT
    upstream_dns: tuple[str, ...] = ()
    agent_port: int = AGENT_PORT
    api_port: int = API_PORT  # the server's (and its URL's port): firewalled like the agent's
    database_port: int = DATABASE_PORT  # a managed PostgreSQL on the server's machine
    agent_listen: str = ""  # empty: the node's overlay address
    caddy_binary: str = "caddy"
    caddy_admin_socket: Path = Path("/run/shoal/caddy/admin.sock")
    http_port: int = HTTP_PORT
    https_port: int = HTTPS_PORT
    heartbeat_s: float = 1.0
    poll_wait_s: float = 30.0
    supervise_s: float = 1.0  # restart policies and log rotation run this often
    resync_s: float = 10.0  # a full pass this often without a new state: repairs drift (exits and
    # health changes wake the loop themselves)
    backoff_max_s: float = 5.0
    fence_after_s: float = 5.0  # the server refusing this node (removed) this long: stop its containers
    image_keep_s: float = 180.0  # an image no container uses is kept this long (Nomad's image_delay)
    insecure_registries: tuple[str, ...] = ()
    unpack_max_bytes: int = 20 << 30  # a layer unpacking to more (sparse files by apparent size) is refused
    unpack_max_entries: int = 1_000_000  # a layer with more entries is refused
    unpack_max_ratio: int = 1000  # a layer unpacking to more than this times its compressed size is refused
    pull_timeout_s: float = 900.0  # a pull (fetch, verify, unpack) still running after this fails
    manage_network: bool = True  # bridge, WireGuard, firewall, DNS; off: containers only (tests)

    @property
    def images_dir(self) -> Path:
        return self.data_dir / "images"

    @property
    def volumes_dir(self) -> Path:
        return self.data_dir / "volumes"

    @property
    def bundles_dir(self) -> Path:
        return self.data_dir / "bundles"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def secrets_dir(self) -> Path:
        return self.run_dir / "secrets"

    @property
    def caddy_dir(self) -> Path:
        return self.data_dir / "caddy"

    @property
    def state_file(self) -> Path:
        return self.data_dir / "state.json"

    @property
    def net_state_dir(self) -> Path:
        return self.data_dir / "net"

    @property
    def wg_key_file(self) -> Path:
        return self.data_dir / WG_KEY_FILE

    @property
    def ca_file(self) -> Path:
        return self.data_dir / CA_FILE


@dataclass(frozen=True)
class NodeRecord:
    """What the server answered at join; the agent's identity and credentials."""

    server: str
    name: str
    credential: str
    agent_secret: str
    subnet: str
    overlay_ip: str
    cluster_cidr: str
    server_overlay_ip: str = ""
    public_key: str = ""
    servers: tuple[str, ...] = ()  # every server's URL, as the servers last said (failover)


_PATH_FIELDS = {f.name for f in dataclasses.fields(AgentConfig) if f.type in ("Path", Path)}
_TUPLE_FIELDS = {f.name for f in dataclasses.fields(AgentConfig) if str(f.type).startswith("tuple")}


def config_to_json(config: AgentConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        out[f.name] = (
            str(value) if isinstance(value, Path) else list(value) if isinstance(value, tuple) else value
        )
    return out


def config_from_json(doc: dict[str, Any]) -> AgentConfig:
    """An AgentConfig from its JSON form; an unknown key is an error naming it."""
    known = {f.name: f for f in dataclasses.fields(AgentConfig)}
    values: dict[str, Any] = {}
    for key, value in doc.items():
        if key not in known:
            raise ConfigError(f"agent config: unknown key {key!r}")
        values[key] = _coerce(key, value)
    return AgentConfig(**values)


def _coerce(key: str, value: Any) -> Any:
    if key in _PATH_FIELDS:
        return Path(str(value))
    if key in _TUPLE_FIELDS:
        return tuple(str(v) for v in (value.split(",") if isinstance(value, str) else value) if v)
    default = getattr(AgentConfig(), key)
    if isinstance(default, bool) and isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(default, int | float) and not isinstance(default, bool) and isinstance(value, str):
        try:
            return type(default)(value)
        except ValueError as exc:
            raise ConfigError(f"agent config: {key} must be a number, got {value!r}") from exc
    return value


def with_overrides(config: AgentConfig, pairs: list[str]) -> AgentConfig:
    """Apply `key=value` overrides (`shoal join --set`)."""
    doc = config_to_json(config)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ConfigError(f"--set {pair!r}: expected key=value")
        doc[key.strip().replace("-", "_")] = value
    return config_from_json(doc)


def write_private(path: Path, data: bytes) -> None:
    """Write `data` atomically to `path`, readable by root only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def save(config: AgentConfig, node: NodeRecord) -> None:
    write_private(config.data_dir / AGENT_FILE, json.dumps(config_to_json(config), indent=2).encode())
    write_private(config.data_dir / NODE_FILE, json.dumps(dataclasses.asdict(node), indent=2).encode())


def save_servers(config: AgentConfig, node: NodeRecord, servers: list[str]) -> None:
    """Keep the cluster's server URLs in node.json: after a restart the agent still fails over."""
    node = dataclasses.replace(node, servers=tuple(servers))
    write_private(config.data_dir / NODE_FILE, json.dumps(dataclasses.asdict(node), indent=2).encode())


def load_config(data_dir: Path) -> AgentConfig:
    path = data_dir / AGENT_FILE
    if not path.exists():
        raise ConfigError(f"{path} not found: run `shoal join` first")
    config = config_from_json(_read_json(path))
    return config if config.data_dir == data_dir else dataclasses.replace(config, data_dir=data_dir)


def load_node(data_dir: Path) -> NodeRecord:
    path = data_dir / NODE_FILE
    if not path.exists():
        raise ConfigError(f"{path} not found: run `shoal join` first")
    doc = _read_json(path)
    doc["servers"] = tuple(doc.get("servers") or ())
    try:
        return NodeRecord(**doc)
    except TypeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: not a JSON object")
    return doc

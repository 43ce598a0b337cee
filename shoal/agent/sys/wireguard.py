"""WireGuard: keys, the wireguard-go process and its UAPI socket (agent/sys).

Where the kernel module is loaded, the interface is a kernel `wireguard` link configured through
pyroute2's generic-netlink WireGuard API (`KernelWg`). Otherwise the userspace implementation runs,
supervised, inside the node's netns (`WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1
wireguard-go -f IFNAME`). It is configured with the UAPI text protocol over its Unix socket
(`get=1` / `set=1`, https://www.wireguard.com/xplatform/): `format_set` and `parse_get` are the
pure halves, `Uapi` the transport. Keys travel as base64 in shoal and as hex on the UAPI.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.generic.wireguard import WireGuard  # not the package facade (agent.memory)

from shoal.agent.net.nsthread import in_netns
from shoal.errors import ShoalError
from shoal.pids import reap, wait_gone


class WireguardError(ShoalError):
    """wireguard-go could not be started, or refused a configuration."""


@dataclass(frozen=True)
class WgPeer:
    public_key: str  # base64
    endpoint: str | None = None
    allowed_ips: tuple[str, ...] = ()
    keepalive_s: int = 0
    last_handshake: float = 0.0  # unix time; 0: never
    rx_bytes: int = 0
    tx_bytes: int = 0


@dataclass(frozen=True)
class WgDevice:
    private_key: str = ""  # base64; empty when unset
    listen_port: int = 0
    peers: dict[str, WgPeer] = field(default_factory=dict)


@dataclass(frozen=True)
class PeerUpdate:
    """One peer to create or change; None fields are left as they are."""

    public_key: str
    create: bool
    endpoint: str | None = None
    keepalive_s: int | None = None
    allowed_ips: tuple[str, ...] | None = None


@dataclass(frozen=True)
class WgSet:
    private_key: str | None = None
    listen_port: int | None = None
    peers: tuple[PeerUpdate, ...] = ()
    remove: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return self.private_key is None and self.listen_port is None and not self.peers and not self.remove


def b64_to_hex(key: str) -> str:
    return base64.b64decode(key).hex()


def hex_to_b64(key: str) -> str:
    return base64.b64encode(bytes.fromhex(key)).decode()


KEY_BYTES = 32  # X25519


# ---- keys -----------------------------------------------------------------------------------
def load_or_create_key(path: Path) -> tuple[str, str]:
    """(private, public) base64 keys; the private one made once and kept in `path` (0600)."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey  # noqa: PLC0415 (6 MB .so)

    if path.exists():
        raw = X25519PrivateKey.from_private_bytes(base64.b64decode(path.read_text().strip()))
    else:
        raw = X25519PrivateKey.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(base64.b64encode(raw.private_bytes_raw()).decode() + "\n")
    private = base64.b64encode(raw.private_bytes_raw()).decode()
    return private, base64.b64encode(raw.public_key().public_bytes_raw()).decode()


def load_private_key(path: Path) -> str:
    """The base64 private key kept in `path` (made there first if absent).

    What the agent needs at each start: read without cryptography, whose 6 MB library the agent's
    memory need not carry (only a missing or unreadable key goes through load_or_create_key).
    """
    if path.exists():
        text = path.read_text().strip()
        with contextlib.suppress(ValueError):
            if len(base64.b64decode(text, validate=True)) == KEY_BYTES:
                return text
    return load_or_create_key(path)[0]


def public_key_of(private: str) -> str:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey  # noqa: PLC0415

    raw = X25519PrivateKey.from_private_bytes(base64.b64decode(private))
    return base64.b64encode(raw.public_key().public_bytes_raw()).decode()


# ---- the UAPI text protocol (pure) -----------------------------------------------------------
def format_set(change: WgSet) -> str:
    lines = ["set=1"]
    if change.private_key is not None:
        lines.append(f"private_key={b64_to_hex(change.private_key)}")
    if change.listen_port is not None:
        lines.append(f"listen_port={change.listen_port}")
    for peer in change.peers:
        lines.extend(_peer_lines(peer))
    for key in change.remove:
        lines.extend([f"public_key={b64_to_hex(key)}", "remove=true"])
    return "\n".join(lines) + "\n\n"


def _peer_lines(peer: PeerUpdate) -> list[str]:
    lines = [f"public_key={b64_to_hex(peer.public_key)}"]
    if not peer.create:
        lines.append("update_only=true")
    if peer.endpoint is not None:
        lines.append(f"endpoint={peer.endpoint}")
    if peer.keepalive_s is not None:
        lines.append(f"persistent_keepalive_interval={peer.keepalive_s}")
    if peer.allowed_ips is not None:
        lines.append("replace_allowed_ips=true")
        lines.extend(f"allowed_ip={cidr}" for cidr in peer.allowed_ips)
    return lines


def parse_get(text: str) -> WgDevice:
    """A device from a `get=1` answer; raises on a non-zero errno."""
    device: dict[str, str | int] = {}
    peers: list[dict[str, object]] = []
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key == "errno" and value != "0":
            raise WireguardError(f"wireguard UAPI get failed: errno {value}")
        if key == "public_key":
            peers.append({"public_key": hex_to_b64(value), "allowed_ips": []})
        elif peers:
            _peer_field(peers[-1], key, value)
        elif key in ("private_key", "listen_port"):
            device[key] = hex_to_b64(value) if key == "private_key" else int(value)
    built = [_peer(p) for p in peers]
    return WgDevice(
        str(device.get("private_key", "")),
        int(device.get("listen_port", 0)),
        {p.public_key: p for p in built},
    )


_INT_FIELDS = {"persistent_keepalive_interval", "rx_bytes", "tx_bytes", "last_handshake_time_sec"}


def _peer_field(peer: dict[str, object], key: str, value: str) -> None:
    if key == "allowed_ip":
        peer["allowed_ips"].append(value)  # type: ignore[attr-defined]
    elif key in _INT_FIELDS:
        peer[key] = int(value)
    elif key == "endpoint":
        peer[key] = value


def _peer(raw: dict[str, object]) -> WgPeer:
    return WgPeer(
        public_key=str(raw["public_key"]),
        endpoint=str(raw["endpoint"]) if raw.get("endpoint") else None,
        allowed_ips=tuple(sorted(raw["allowed_ips"])),  # type: ignore[call-overload]
        keepalive_s=int(raw.get("persistent_keepalive_interval", 0)),  # type: ignore[call-overload]
        last_handshake=float(raw.get("last_handshake_time_sec", 0)),  # type: ignore[arg-type]
        rx_bytes=int(raw.get("rx_bytes", 0)),  # type: ignore[call-overload]
        tx_bytes=int(raw.get("tx_bytes", 0)),  # type: ignore[call-overload]
    )


# ---- transport ------------------------------------------------------------------------------
class Uapi:
    """One request per connection over wireguard-go's Unix socket."""

    def __init__(self, path: Path, timeout_s: float = 5.0) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self.writes = 0

    def _exchange(self, request: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(self.timeout_s)
            try:
                sock.connect(str(self.path))
            except OSError as exc:
                raise WireguardError(f"wireguard UAPI socket {self.path}: {exc.strerror}") from exc
            sock.sendall(request.encode())
            return _read_answer(sock)

    def get(self) -> WgDevice:
        return parse_get(self._exchange("get=1\n\n"))

    def set(self, change: WgSet) -> None:
        self.writes += 1
        answer = self._exchange(format_set(change))
        if "errno=0" not in answer.splitlines():
            raise WireguardError(f"wireguard UAPI refused the configuration: {answer.strip()}")

    def alive(self) -> bool:
        """Something listens on the socket (a connect, no request)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(self.timeout_s)
            try:
                sock.connect(str(self.path))
            except OSError:
                return False
        return True


def _read_answer(sock: socket.socket) -> str:
    chunks: list[bytes] = []
    while not b"".join(chunks).endswith(b"\n\n"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode()


# ---- kernel WireGuard through pyroute2 ----------------------------------------------------
def kernel_module_loaded(sys_module: Path = Path("/sys/module/wireguard")) -> bool:
    return sys_module.exists()


def kernel_set_calls(change: WgSet) -> list[dict[str, Any]]:
    """The pyroute2 `WireGuard.set` keyword arguments for a change: device first, then a call per peer."""
    calls: list[dict[str, Any]] = []
    if change.private_key is not None or change.listen_port is not None:
        calls.append({"private_key": change.private_key, "listen_port": change.listen_port})
    calls.extend({"peer": _kernel_peer(peer)} for peer in change.peers)
    calls.extend({"peer": {"public_key": key, "remove": True}} for key in change.remove)
    return calls


def _kernel_peer(peer: PeerUpdate) -> dict[str, Any]:
    out: dict[str, Any] = {"public_key": peer.public_key, "update_only": not peer.create}
    if peer.endpoint is not None:
        host, _, port = peer.endpoint.rpartition(":")
        out.update(endpoint_addr=host.strip("[]"), endpoint_port=int(port))
    if peer.keepalive_s is not None:
        out["persistent_keepalive"] = peer.keepalive_s
    if peer.allowed_ips is not None:
        out.update(replace_allowed_ips=True, allowed_ips=list(peer.allowed_ips))
    return out


def parse_kernel_device(messages: Sequence[Any]) -> WgDevice:
    """A device from pyroute2 `WireGuard.info()` messages (a big peer list spans several)."""
    first = messages[0]
    peers = [_kernel_peer_state(p) for m in messages for p in (m.get_attr("WGDEVICE_A_PEERS") or [])]
    key = first.get_attr("WGDEVICE_A_PRIVATE_KEY")
    return WgDevice(
        private_key=_text(key) if key else "",
        listen_port=int(first.get_attr("WGDEVICE_A_LISTEN_PORT") or 0),
        peers={p.public_key: p for p in peers},
    )


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _kernel_peer_state(peer: Any) -> WgPeer:
    endpoint = peer.get_attr("WGPEER_A_ENDPOINT")
    handshake = peer.get_attr("WGPEER_A_LAST_HANDSHAKE_TIME") or {}
    address = endpoint and endpoint.get("addr")
    return WgPeer(
        public_key=_text(peer.get_attr("WGPEER_A_PUBLIC_KEY")),
        endpoint=(f"[{address}]" if ":" in address else address) + f":{endpoint['port']}"
        if address
        else None,
        allowed_ips=tuple(sorted(ip.get("addr") for ip in peer.get_attr("WGPEER_A_ALLOWEDIPS") or [])),
        keepalive_s=int(peer.get_attr("WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL") or 0),
        last_handshake=float(handshake.get("tv_sec", 0)),
        rx_bytes=int(peer.get_attr("WGPEER_A_RX_BYTES") or 0),
        tx_bytes=int(peer.get_attr("WGPEER_A_TX_BYTES") or 0),
    )


class KernelWg:
    """The kernel's WireGuard for one interface, over generic netlink in the node's netns."""

    def __init__(self, interface: str, namespace: Path | None) -> None:
        self.interface = interface
        self.namespace = namespace
        self.writes = 0

    def get(self) -> WgDevice:
        def info() -> WgDevice:
            with WireGuard() as wg:
                return parse_kernel_device(list(wg.info(self.interface)))

        return in_netns(self.namespace, info)

    def set(self, change: WgSet) -> None:
        self.writes += 1

        def run() -> None:
            with WireGuard() as wg:
                for call in kernel_set_calls(change):
                    wg.set(self.interface, **call)

        try:
            in_netns(self.namespace, run)
        except (NetlinkError, ValueError) as exc:
            raise WireguardError(
                f"kernel WireGuard refused the configuration of {self.interface}: {exc}"
            ) from exc


# ---- the wireguard-go process ---------------------------------------------------------------
@dataclass(frozen=True)
class WireguardGo:
    """wireguard-go for one interface; outlives the agent (own session, pid file), adopted after."""

    binary: str
    interface: str
    socket: Path
    state_dir: Path
    argv_prefix: Sequence[str] = ()  # e.g. ("nsenter", "--net=/run/netns/X")

    @property
    def pid_file(self) -> Path:
        return self.state_dir / f"{self.interface}.pid"

    def ensure(self) -> bool:
        """Start it unless its socket answers; True when it was started."""
        if Uapi(self.socket, 1.0).alive():
            return False
        self.state_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD": "1", "LOG_LEVEL": "error"}
        argv = [*self.argv_prefix, self.binary, "-f", self.interface]
        with open(self.state_dir / f"{self.interface}.log", "ab") as log:
            proc = subprocess.Popen(argv, env=env, stdout=log, stderr=log, start_new_session=True)
        self.pid_file.write_text(f"{proc.pid}\n")
        self._wait_up(proc)
        return True

    def _wait_up(self, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if Uapi(self.socket, 1.0).alive():
                return
            if proc.poll() is not None:
                raise WireguardError(f"wireguard-go for {self.interface} exited with {proc.returncode}")
            time.sleep(0.05)
        raise WireguardError(f"wireguard-go for {self.interface}: no UAPI socket at {self.socket}")

    def stop(self) -> None:
        """End the process this agent started (by its pid file); the TUN link goes with it."""
        if not self.pid_file.exists():
            return
        pid = int(self.pid_file.read_text())
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            if not wait_gone(pid, 5.0, poll_s=0.05):
                os.kill(pid, signal.SIGKILL)
        reap(pid)
        self.pid_file.unlink(missing_ok=True)


def resolve_endpoint(endpoint: str) -> str:
    """host:port with the host resolved to an address, as the UAPI wants it."""
    host, _, port = endpoint.rpartition(":")
    host = host.strip("[]")
    try:
        info = socket.getaddrinfo(host, int(port), proto=socket.IPPROTO_UDP)[0]
    except (OSError, ValueError) as exc:
        raise WireguardError(f"wireguard endpoint {endpoint!r} does not resolve") from exc
    address = str(info[4][0])
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"

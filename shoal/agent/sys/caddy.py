"""Caddy as a supervised child and its admin API on a Unix socket (agent/sys).

The process outlives an agent restart (own session, pid file) and is adopted by the next agent.
Configuration always goes whole through `POST /load`; `GET /config/` is how it is observed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from shoal.errors import ShoalError
from shoal.pids import reap, wait_gone


class CaddyError(ShoalError):
    """Caddy refused a config or could not be started."""


@dataclass(frozen=True)
class CaddyProcessConfig:
    binary: str
    state_dir: Path  # pid file, bootstrap config, log, XDG dirs
    admin_socket: Path
    argv_prefix: tuple[str, ...] = ()  # e.g. ("nsenter", "--net=/run/netns/X"): run Caddy elsewhere

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "caddy.pid"

    @property
    def config_file(self) -> Path:
        return self.state_dir / "caddy.json"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "caddy.log"


def caddy_run_argv(binary: str, config_file: Path) -> list[str]:
    return [binary, "run", "--config", str(config_file)]


class CaddyAdmin:
    """The admin API over its Unix socket."""

    def __init__(self, socket: Path, timeout_s: float = 10.0) -> None:
        transport = httpx.HTTPTransport(uds=str(socket))
        self._http = httpx.Client(transport=transport, base_url="http://localhost", timeout=timeout_s)
        self._socket = socket

    def close(self) -> None:
        self._http.close()

    def answers(self) -> bool:
        if not self._socket.exists():
            return False
        try:
            return self._http.get("/config/").status_code == 200
        except httpx.TransportError:
            return False

    def running_config(self) -> dict[str, Any] | None:
        """The config Caddy runs, or None when nothing answers on the socket (one request)."""
        if not self._socket.exists():
            return None
        try:
            return self.get_config()
        except (httpx.TransportError, httpx.HTTPStatusError):
            return None

    def get_config(self) -> dict[str, Any] | None:
        response = self._http.get("/config/")
        response.raise_for_status()
        body = response.json()
        return body if isinstance(body, dict) else None

    def load(self, config: dict[str, Any]) -> None:
        response = self._http.post("/load", json=config)
        if response.status_code != 200:
            raise CaddyError(f"caddy refused the config: {_caddy_message(response)}")


def _caddy_message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", response.text)).strip()
    except (json.JSONDecodeError, AttributeError):
        return response.text.strip()[:300]


def serves_tls(port: int, host: str, timeout_s: float = 1.0) -> bool:
    """Whether Caddy on this namespace's loopback completes a TLS handshake for `host` (SNI): it
    has a certificate for it. Caddy issues one only after a load that names the host, and a
    handshake before that ends in an alert."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # whether it has a certificate, not whose
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as raw,
            context.wrap_socket(raw, server_hostname=host),
        ):
            return True
    except (OSError, ssl.SSLError):
        return False


class CaddyProcess:
    """Starts, finds and stops this node's Caddy by the pid it recorded."""

    def __init__(self, config: CaddyProcessConfig) -> None:
        self.config = config

    def pid(self) -> int | None:
        try:
            pid = int(self.config.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _is_caddy(pid, self.config.binary) else None

    def start(self, bootstrap: dict[str, Any], timeout_s: float = 15.0) -> int:
        cfg = self.config
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        cfg.config_file.write_text(json.dumps(bootstrap))
        cfg.admin_socket.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        cfg.admin_socket.unlink(missing_ok=True)
        with open(cfg.log_file, "ab") as log:
            proc = subprocess.Popen(
                [*cfg.argv_prefix, *caddy_run_argv(cfg.binary, cfg.config_file)],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                env=self._env(),
                start_new_session=True,
            )
        cfg.pid_file.write_text(str(proc.pid))
        self._wait_ready(proc, timeout_s)
        return proc.pid

    def stop(self, timeout_s: float = 10.0) -> None:
        pid = self.pid()
        if pid is not None:
            _terminate(pid, timeout_s)
        self.config.pid_file.unlink(missing_ok=True)

    def _env(self) -> dict[str, str]:
        base = str(self.config.state_dir)
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "TZ")}
        env.update({"HOME": base, "XDG_DATA_HOME": f"{base}/data", "XDG_CONFIG_HOME": f"{base}/config"})
        return env

    def _wait_ready(self, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
        admin = CaddyAdmin(self.config.admin_socket)
        try:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise CaddyError(f"caddy exited with {proc.returncode}: {self._log_tail()}")
                if admin.answers():
                    return
                time.sleep(0.05)
        finally:
            admin.close()
        raise CaddyError(f"caddy did not answer on {self.config.admin_socket} in {timeout_s:.0f}s")

    def _log_tail(self) -> str:
        try:
            lines = self.config.log_file.read_text(errors="replace").strip().splitlines()
        except FileNotFoundError:
            return "no log"
        return lines[-1][:300] if lines else "no log"


def _is_caddy(pid: int, binary: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):
        return False
    return bool(cmdline) and os.path.basename(cmdline[0].decode()) == os.path.basename(binary)


def _terminate(pid: int, timeout_s: float) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if wait_gone(pid, timeout_s, poll_s=0.05):
        return
    os.kill(pid, signal.SIGKILL)
    reap(pid)

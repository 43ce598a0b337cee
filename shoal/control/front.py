"""The API's front door: Caddy terminates TLS and hands each request to a local WSGI lane.

Why Caddy in front (issue 19), rather than TLS in the Python server:
- cheroot made every TLS handshake on its one selector thread with a 70 s timeout: a client that
  connected and sent nothing stalled every request, heartbeats included. Go's server (Caddy, already
  shipped for ingress) runs each connection in its own goroutine and gives the handshake and the
  request head `read_header_timeout` (10 s) together; 20 silent connections cost 20 goroutines.
- gunicorn's gthread workers were the other candidate. Measured on gunicorn 27 by reading its
  worker: a new connection takes a pool thread for up to 5 s waiting for data, and the handshake
  then runs on that thread with a blocking socket and no deadline, so a client sending half a
  ClientHello holds a thread for good; its arbiter is a second process the controller would have
  to fit into. Caddy also gives what gunicorn has no setting for: a header size limit (431), idle
  deadlines, HTTP/2, and routing before any Python runs.
- Routing before Python is what reserves capacity: Caddy sends a node's own state long-poll and
  status report (path and `Bearer shoal-node.` credential) to the node lane, everything else to
  the people lane; each lane is its own cheroot thread pool on its own Unix socket (serve.py), so
  no person's streams, however many, can hold a thread a heartbeat needs.

`caddy_config` is pure; `Front` runs `caddy run` as a child that dies with the server
(PR_SET_PDEATHSIG), with its admin API off and its files under the server's run directory.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shoal.control.fairuse import BODY_LIMITS, DEFAULT_BODY, too_large
from shoal.errors import ShoalError

log = logging.getLogger(__name__)

READ_HEADER_TIMEOUT = "10s"  # Go applies it to the TLS handshake as well
IDLE_TIMEOUT = "120s"  # a kept-alive connection with no request (agents poll at most 60 s apart)
MAX_HEADER_BYTES = 16 * 1024  # Go answers 431 a little past it (it reads in 4 KiB steps)
BUFFERED = 64 * 1024  # of a person's request body, read by Caddy before a lane thread is taken
NODE_PATHS = ["/api/v1/nodes/*/state", "/api/v1/nodes/*/status"]
NODE_CREDENTIAL = "Bearer shoal-node.*"
PR_SET_PDEATHSIG = 1


class FrontError(ShoalError):
    """Caddy could not start or stopped answering."""


@dataclass(frozen=True)
class FrontConfig:
    listen: str  # HOST:PORT people and agents connect to
    cert: Path
    key: Path
    node_socket: Path
    people_socket: Path
    run_dir: Path  # Caddy's storage and config file


def _proxy(sock: Path, buffered: int = 0) -> dict[str, Any]:
    return {
        "handler": "reverse_proxy",
        "buffer_requests": buffered > 0,
        "max_buffer_size": buffered,
        "upstreams": [{"dial": f"unix/{sock}"}],
        # no flush_interval: Caddy flushes responses of unknown length (our streams) at once
        # anyway, and -1 would keep an upstream request going after its client left
        "transport": {
            "protocol": "http",
            "dial_timeout": "3s",
            "keep_alive": {"max_idle_conns_per_host": 512},
        },
    }


def at_least(threshold: int) -> str:
    """A regexp matching exactly the decimal numbers >= `threshold` (leading zeros allowed)."""
    digits = str(threshold)
    size = len(digits)
    longer = f"[1-9][0-9]{{{size},}}"
    greater = [
        f"{digits[:i]}[{int(d) + 1}-9][0-9]{{{size - i - 1}}}" for i, d in enumerate(digits) if d != "9"
    ]
    return f"^0*({'|'.join([digits, *greater, longer])})$"


def _too_large(limit: int, paths: list[str], elsewhere: bool = False) -> dict[str, Any]:
    """A route answering 413 from Content-Length alone, at `paths` (or everywhere but them): the
    body is never read, and the client gets the answer rather than a connection reset by a lane
    that refused mid-upload."""
    match: dict[str, Any] = {"header_regexp": {"Content-Length": {"pattern": at_least(limit)}}}
    match.update({"not": [{"path": paths}]} if elsewhere else {"path": paths})
    body = json.dumps({"error": too_large(limit)})
    answer = {"handler": "static_response", "status_code": 413, "body": body, "close": True,
              "headers": {"Content-Type": ["application/json"]}}  # fmt: skip
    return {"match": [match], "handle": [answer], "terminal": True}


def body_routes() -> list[dict[str, Any]]:
    """413 routes: each limited path with its own limit, then the default for every other path."""
    routes = [_too_large(limit, [path]) for path, limit in sorted(BODY_LIMITS.items())]
    return [*routes, _too_large(DEFAULT_BODY, sorted(BODY_LIMITS), elsewhere=True)]


def caddy_config(front: FrontConfig) -> dict[str, Any]:
    """The whole Caddy JSON config: one HTTPS server; body limits, then the two lanes' routes."""
    node_route = {
        "match": [{"path": NODE_PATHS, "header": {"Authorization": [NODE_CREDENTIAL]}}],
        "handle": [_proxy(front.node_socket)],
        "terminal": True,
    }
    server = {
        "listen": [front.listen],
        "read_header_timeout": READ_HEADER_TIMEOUT,
        "idle_timeout": IDLE_TIMEOUT,
        "max_header_bytes": MAX_HEADER_BYTES,
        "protocols": ["h1", "h2"],
        "automatic_https": {"disable": True},
        "tls_connection_policies": [{"certificate_selection": {"any_tag": ["shoal-api"]}}],
        "routes": [*body_routes(), node_route, {"handle": [_proxy(front.people_socket, BUFFERED)]}],
    }
    certificate = {"certificate": str(front.cert), "key": str(front.key), "tags": ["shoal-api"]}
    return {
        "admin": {"disabled": True, "config": {"persist": False}},
        "logging": {"logs": {"default": {"level": "ERROR"}}},
        "storage": {"module": "file_system", "root": str(front.run_dir / "caddy")},
        "apps": {
            "tls": {"certificates": {"load_files": [certificate]}},
            "http": {"servers": {"api": server}},
        },
    }


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the server's thread that started it ends. Not
    SIGTERM: Caddy's graceful stop keeps answering 502 for the lanes that died with the server,
    and a client then sees an error instead of a refused connection it would fail over on."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Front:
    """`caddy run` serving `FrontConfig`, started and stopped with the server."""

    def __init__(self, front: FrontConfig, binary: str = "caddy") -> None:
        self.front, self.binary = front, binary
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 15.0) -> None:
        self.front.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        config = self.front.run_dir / "caddy.json"
        config.write_text(json.dumps(caddy_config(self.front), indent=1))
        home = str(self.front.run_dir)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "XDG_DATA_HOME": home,
               "XDG_CONFIG_HOME": home}  # fmt: skip
        log_file = (self.front.run_dir / "caddy.log").open("ab")
        try:
            self.proc = subprocess.Popen(
                [self.binary, "run", "--config", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                env=env,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 (started before the server's threads)
            )
        except OSError as exc:
            raise FrontError(f"cannot run {self.binary}: {exc.strerror}") from exc
        finally:
            log_file.close()
        self._wait_listening(timeout_s)

    def _wait_listening(self, timeout_s: float) -> None:
        host, _, port = self.front.listen.rpartition(":")
        host = host.strip("[]")
        target = "127.0.0.1" if host in ("", "0.0.0.0") else "::1" if host == "::" else host  # noqa: S104
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise FrontError(f"caddy exited: {self._last_log_line()}")
            with contextlib.suppress(OSError), socket.create_connection((target, int(port)), timeout=1):
                return
            time.sleep(0.05)
        raise FrontError(f"caddy did not listen on {self.front.listen} within {timeout_s:g}s")

    def _last_log_line(self) -> str:
        try:
            lines = (self.front.run_dir / "caddy.log").read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        last = lines[-1] if lines else "no log"
        with contextlib.suppress(ValueError, AttributeError):
            last = str(json.loads(last).get("msg", last)) + ": " + str(json.loads(last).get("error", ""))
        return last[:300]

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

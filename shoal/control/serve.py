"""Serving the API: Caddy in front (front.py) and two cheroot lanes behind it on Unix sockets.

The node lane runs agents' long-polls and status reports, the people lane everything else (the
CLI, the web UI, join); each is its own thread pool, so one cannot take the other's threads
(front.py says why and how requests are routed). Requests arrive whole-headed from Caddy over a
local socket: no TLS, no slow client, in Python. Each request's environ says its lane
(`shoal.lane`) and can tell whether the client has gone (`shoal.peer_closed()`: Caddy closes the
upstream connection when its client goes), which streams poll so that a followed log or an event
stream whose reader left ends within a second instead of holding its thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from cheroot import wsgi
from flask import Flask

from shoal.control.config import ServerConfig
from shoal.control.front import Front, FrontConfig
from shoal.peer import peer_closed

log = logging.getLogger(__name__)
LANE = "shoal.lane"
PEER_CLOSED = "shoal.peer_closed"
NODE_LANE, PEOPLE_LANE = "node", "people"
LISTEN_BACKLOG = 1024
SOCKET_PATH_MAX = 100
SOCKET_TIMEOUT_S = 75  # one read or write on a lane socket (a long-poll answers within 60 s)


def _never_closed() -> bool:
    return False


def lane_of(environ: dict[str, Any]) -> str:
    return str(environ.get(LANE, PEOPLE_LANE))


def client_gone(environ: dict[str, Any]) -> Callable[[], bool]:
    found = environ.get(PEER_CLOSED)
    return found if callable(found) else _never_closed


class _Gateway(wsgi.Gateway_10):
    """cheroot's WSGI 1.0 gateway, adding the lane and the closed-peer check to the environ."""

    def get_environ(self) -> Any:
        env: dict[str, Any] = super().get_environ()  # type: ignore[no-untyped-call]
        env[LANE] = getattr(self.req.server, "shoal_lane", PEOPLE_LANE)
        env[PEER_CLOSED] = partial(peer_closed, self.req.conn.socket)
        return env

    def start_response(self, status: Any, headers: Any, exc_info: Any = None) -> Any:
        """cheroot drains an unread body before answering unless the connection is to close: the
        app's `Connection: close` (fairuse.closes_unread) closes it."""
        if any(k.lower() == "connection" and v.lower() == "close" for k, v in headers):
            self.req.close_connection = True
        return super().start_response(status, headers, exc_info)


class _LaneServer(wsgi.Server):
    shoal_lane = PEOPLE_LANE


def _lane_server(app: Flask, path: Path, lane: str, threads: int) -> _LaneServer:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a socket left by a server that was killed
    server = _LaneServer(
        str(path),
        app,
        numthreads=threads,
        server_name="shoal",
        timeout=SOCKET_TIMEOUT_S,
        shutdown_timeout=2,
        request_queue_size=LISTEN_BACKLOG,
    )
    server.gateway = _Gateway
    server.shoal_lane = lane
    server.keep_alive_conn_limit = None  # type: ignore[assignment]
    return server


@dataclass
class ApiServing:
    """The front and both lanes, started and stopped together."""

    config: ServerConfig
    app: Flask | None = None
    front: Front | None = None
    lanes: list[wsgi.Server] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    def run_dir(self) -> Path:
        """Where the lanes' sockets and Caddy's files live: under the data dir, or under /run
        when that path would be too long for a Unix socket (108 bytes)."""
        port = str(self.config.listen_address()[1])
        run = self.config.data_dir / "run" / port
        if len(str(run / "people.sock")) < SOCKET_PATH_MAX:
            return run
        tag = hashlib.sha256(str(self.config.data_dir).encode()).hexdigest()[:12]
        return Path("/run") / f"shoal-server-{tag}-{port}"

    def start_front(self) -> None:
        """Caddy first, from the main thread, before any other thread exists (see front.py)."""
        run = self.run_dir()
        run.mkdir(mode=0o700, parents=True, exist_ok=True)
        host, port = self.config.listen_address()
        listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        front = FrontConfig(listen, self.config.cert, self.config.key, run / "node.sock", run / "people.sock",
                            run)  # fmt: skip
        self.front = Front(front, self.config.caddy_binary)
        self.front.start()

    def start_lanes(self) -> None:
        assert self.app is not None
        run = self.run_dir()
        for lane, threads in (
            (NODE_LANE, self.config.node_threads),
            (PEOPLE_LANE, self.config.people_threads),
        ):
            server = _lane_server(self.app, run / f"{lane}.sock", lane, threads)
            server.prepare()
            thread = threading.Thread(target=server.serve, name=f"shoal-{lane}", daemon=True)
            thread.start()
            self.lanes.append(server)
            self.threads.append(thread)

    def healthy(self) -> bool:
        """Whether both lanes still serve; Caddy, if it died, is started again (from the main
        thread, which its death signal is tied to)."""
        if self.front is not None and not self.front.alive():
            log.warning("caddy exited; starting it again")
            self.front.start()
        return all(t.is_alive() for t in self.threads)

    def stop(self) -> None:
        if self.front is not None:
            self.front.stop()
        for server in self.lanes:
            server.stop()

"""The server's own heartbeat: its row in `servers` (URL, node, version, pid, leading or not).

Every `heartbeat_s` the server records itself, so `shoal server ls` shows every server and which
one leads, and reads every server's URL, which each API answer then carries (header
`X-Shoal-Servers`): agents and the CLI fail over between them. A database outage only
skips beats: the row goes stale and the server is reported as not leading until it beats again.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable

import psycopg

from shoal import __version__
from shoal.control.config import ServerConfig
from shoal.control.store import servers
from shoal.control.store.db import Conn, connect
from shoal.errors import ShoalError

log = logging.getLogger(__name__)


def node_name(config: ServerConfig) -> str:
    """The machine this server runs on, as `shoal server ls` names it."""
    return config.node_name or config.server_node or socket.gethostname()


class Presence:
    def __init__(
        self,
        config: ServerConfig,
        leader: threading.Event | None,
        on_urls: Callable[[list[str]], None] | None = None,
    ) -> None:
        self._config = config
        self._leader = leader
        self._on_urls = on_urls
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shoal-presence", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            with connect(self._config.dsn) as conn:
                servers.leave(conn, self._config.advertise)
        except (psycopg.Error, ShoalError) as exc:
            log.info("presence: %s", str(exc).strip().splitlines()[:1])

    def beat(self, conn: Conn) -> None:
        leading = self._leader is not None and self._leader.is_set()
        config = self._config
        servers.beat(conn, config.advertise, node_name(config), __version__, pid=os.getpid(), leader=leading)
        if self._on_urls is not None:
            self._on_urls(servers.urls(conn))

    def _run(self) -> None:
        conn: Conn | None = None
        while not self._stop.is_set():
            try:
                conn = conn if conn is not None and not conn.closed else connect(self._config.dsn)
                self.beat(conn)
            except (psycopg.Error, OSError, ShoalError) as exc:
                log.warning("presence: %s", str(exc).strip().splitlines()[:1])
                if conn is not None:
                    conn.close()
                conn = None
            self._stop.wait(self._config.heartbeat_s)
        if conn is not None:
            conn.close()

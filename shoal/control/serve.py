"""HTTPS serving: cheroot's WSGI server with the built-in TLS adapter, many threads for long-polls.

Every agent keeps a long-poll and a status connection open: cheroot's defaults (a listen backlog
of 5, at most 10 idle keep-alive connections) made each node reconnect, with a TLS handshake,
after nearly every request, and a burst of reconnects overflowed the backlog, leaving clients
in SYN retransmits for seconds. Both are sized for the cluster instead; idle keep-alive
connections are not capped at all (cheroot counts them under the lock its selector thread holds
while it sweeps them, so a cap made every response wait on that sweep).
"""

from __future__ import annotations

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter
from flask import Flask

from shoal.control.config import ServerConfig

LISTEN_BACKLOG = 1024


def make_server(app: Flask, config: ServerConfig) -> wsgi.Server:
    server = wsgi.Server(
        config.listen_address(),
        app,
        numthreads=config.threads,
        server_name="shoal",
        timeout=70,
        shutdown_timeout=2,
        request_queue_size=LISTEN_BACKLOG,
    )
    # None: no cap (cheroot checks `is None`; its stub says int). Idle ones wait in its selector.
    server.keep_alive_conn_limit = None  # type: ignore[assignment]
    server.ssl_adapter = BuiltinSSLAdapter(str(config.cert), str(config.key))
    return server

"""HTTPS serving: cheroot's WSGI server with the built-in TLS adapter, many threads for long-polls.

Both of cheroot's defaults are raised. Its keep-alive cap (10 idle connections) made agents
reconnect, with a TLS handshake, after nearly every request; its listen backlog (5) then
overflowed in a burst of reconnects at 200 nodes (SYN retransmits: some nodes got no state for
minutes). Idle connections are bounded by the number of nodes, each holding one long-poll.
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
    server.keep_alive_conn_limit = None  # type: ignore[assignment]
    server.ssl_adapter = BuiltinSSLAdapter(str(config.cert), str(config.key))
    return server

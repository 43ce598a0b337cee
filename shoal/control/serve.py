"""HTTPS serving: cheroot's WSGI server with the built-in TLS adapter, many threads for long-polls.

Every agent keeps a long-poll and a status connection open: cheroot's defaults (a listen backlog
of 5, at most 10 idle keep-alive connections) made each node reconnect, with a TLS handshake,
after nearly every request, and a burst of reconnects overflowed the backlog, leaving clients
in SYN retransmits for seconds. The backlog is sized for the cluster. The keep-alive cap stays
cheroot's: uncapped, the scale benchmark's nodes got their states in 8 s instead of 10.5 s, but
the e2e ingress tests then saw 502s and late routes after the failure tests, for a reason not
found yet (see issue 4).
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
    server.ssl_adapter = BuiltinSSLAdapter(str(config.cert), str(config.key))
    return server

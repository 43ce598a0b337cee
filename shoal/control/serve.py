"""HTTPS serving: cheroot's WSGI server with the built-in TLS adapter, many threads for long-polls.

cheroot's listen backlog (5) and keep-alive cap (10 idle connections) stay at their defaults, so
agents reconnect, with a TLS handshake, after nearly every request; at 200 nodes that costs the
scale benchmark about 2.5 s. Either one raised (backlog 1024, keep-alive uncapped) made the e2e
ingress tests fail after the failure tests (502s, late routes) for a reason not yet found: see
issue 4 before raising them.
"""

from __future__ import annotations

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter
from flask import Flask

from shoal.control.config import ServerConfig


def make_server(app: Flask, config: ServerConfig) -> wsgi.Server:
    server = wsgi.Server(
        config.listen_address(),
        app,
        numthreads=config.threads,
        server_name="shoal",
        timeout=70,
        shutdown_timeout=2,
    )
    server.ssl_adapter = BuiltinSSLAdapter(str(config.cert), str(config.key))
    return server

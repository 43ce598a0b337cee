"""HTTPS serving: cheroot's WSGI server with the built-in TLS adapter, many threads for long-polls.

cheroot's listen backlog (5) and keep-alive cap (10 idle connections) are its defaults, so agents
reconnect, with a TLS handshake, after nearly every request, and at 200 nodes a burst of
reconnects can overflow the backlog (SYN retransmits). Raised (backlog 1024, keep-alive
uncapped), the scale benchmark met its 10-s target; they were taken back while chasing an e2e
ingress failure that later also showed without them (issue 4): raise them once that is found.
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

"""HTTPS serving: cheroot's WSGI server with the built-in TLS adapter, many threads for long-polls."""

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

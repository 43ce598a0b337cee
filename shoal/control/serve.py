"""HTTPS serving: cheroot's WSGI server with the built-in TLS adapter, many threads for long-polls.

Every agent keeps a long-poll and reports status: with cheroot's listen backlog of 5, a burst of
reconnects overflowed it and left clients in SYN retransmits for seconds (at 200 nodes, some never
got their state within 120 s), so the backlog is sized for the cluster. The keep-alive cap stays
cheroot's (10 idle connections): agents reconnect, with a TLS handshake, after nearly every
request, which costs the 200-node scale benchmark about 2.5 s; uncapping it is the next step for
scale (issue 4).
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

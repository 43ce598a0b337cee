"""Whether the other end of a connection has gone: for servers streaming to an idle reader.

Used by the API server's lanes (control/serve.py) and the agent's endpoint (agent/httpd.py): a
stream that writes nothing for a while cannot learn from a failed write that its reader left, so
it asks the socket between writes. Only for sockets on which the client sends nothing more once
its request is read (HTTP/1.1 without pipelining, as Caddy and httpx speak it).
"""

from __future__ import annotations

import select
import socket


def peer_closed(sock: socket.socket) -> bool:
    """True when the socket is readable and reading would return end-of-file (or it is broken)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except (OSError, ValueError):
        return True

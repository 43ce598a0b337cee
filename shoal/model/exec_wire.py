"""What one command run in a container gave: `runc exec` makes it, the agent's endpoint sends it,
the server relays it and `shoal exec` reads it (`POST .../exec`)."""

from __future__ import annotations

from shoal.model.base import Wire


class ExecResult(Wire):
    exit_code: int
    output: str = ""

"""Version skew between a server and its agents: an agent may be one minor version behind.

A server of version X.Y accepts agents of X.Y and X.(Y-1) (the node state and status documents
are tolerant of fields either side does not know, `model.base.Wire`). Anything older, newer, or
unreadable is reported, never silently assumed to work: `shoal node ls` shows each agent's
version, and `shoal server upgrade-check` lists the agents an upgrade would leave too far behind.
"""

from __future__ import annotations

import re

_RELEASE = re.compile(r"^(\d+)\.(\d+)(?:\.\d+)?")


def minor_of(version: str) -> tuple[int, int] | None:
    """(major, minor) of "0.3.1", "0.3", "0.3.1.dev2"; None for anything else."""
    found = _RELEASE.match(version.strip())
    return (int(found[1]), int(found[2])) if found else None


def agent_problem(agent: str, server: str) -> str | None:
    """Why an agent of version `agent` does not fit a server of version `server` (None: it does)."""
    have, want = minor_of(agent), minor_of(server)
    if have is None or want is None:
        return f"agent version {agent or 'unknown'} cannot be compared with server {server}"
    if have > want:
        return f"agent {agent} is newer than server {server}: upgrade the servers first"
    if have[0] != want[0] or have[1] < want[1] - 1:
        return f"agent {agent} is more than one minor version behind server {server}: upgrade it first"
    return None


def next_minor(version: str) -> str:
    found = minor_of(version)
    return f"{found[0]}.{found[1] + 1}.0" if found else version

"""The sandbox's record of what it made: ``<dir>/sandbox.json``.

Written by `up` as it goes (so a crash mid-way still leaves a record), read by `status`, `exec`
and `down` from any later process. `down` also works without it (it sweeps ``sbx-*``).
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field

from shoal.errors import ShoalError

DEFAULT_DIR = Path("/var/lib/shoal-sandbox")
STATE_FILE = "sandbox.json"


class SandboxMissing(ShoalError):
    """No sandbox is recorded in the directory."""


class SandboxNode(BaseModel):
    """A node as `status` reports it, plus the holder that keeps its namespaces."""

    name: str
    netns: str
    address: str
    nat: bool
    ingress: bool
    holder_pid: int = 0


class ProcessRecord(BaseModel):
    """A detached process the sandbox started: where it runs, what it is, its log."""

    node: str
    role: str
    pid: int
    log: str


class SandboxState(BaseModel):
    """Everything `up` made, enough for `status`, `exec` and `down`."""

    dir: str
    nodes: list[SandboxNode] = Field(default_factory=list)
    processes: list[ProcessRecord] = Field(default_factory=list)
    registry: str = ""
    registry_pid: int = 0
    server: str = ""
    servers: list[str] = Field(default_factory=list)  # every server's URL (`up --servers N`)
    ca: str = ""
    ingress_ca: str = ""
    cluster: bool = False
    nat_mode: str = "shared"  # `up --nat-mode`: one shared NAT router, or one symmetric NAT per node

    def node(self, name: str) -> SandboxNode:
        for node in self.nodes:
            if node.name == name:
                return node
        names = ", ".join(n.name for n in self.nodes)
        raise ShoalError(f"no sandbox node named {name!r} (nodes: {names})")


def sandbox_dir(given: Path | None = None) -> Path:
    """The sandbox directory: the flag, else ``$SHOAL_SANDBOX_DIR``, else the default."""
    if given is not None:
        return given
    return Path(os.environ.get("SHOAL_SANDBOX_DIR") or DEFAULT_DIR)


def save(state: SandboxState) -> None:
    """Write the record atomically."""
    path = Path(state.dir) / STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(state.model_dump_json(indent=2))
    tmp.replace(path)


def load(directory: Path) -> SandboxState:
    path = directory / STATE_FILE
    if not path.exists():
        raise SandboxMissing(f"no sandbox recorded in {directory} (run `shoal sandbox up`)")
    return SandboxState.model_validate_json(path.read_text())


def forget(directory: Path) -> None:
    (directory / STATE_FILE).unlink(missing_ok=True)

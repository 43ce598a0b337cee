"""Where the CLI keeps its clusters: contexts (server URL, pinned CA, token) in ~/.config/shoal/.

`shoal login` and `shoal sandbox up` write a context and make it current (the context also keeps
the server URLs the cluster names, to fail over to when its server is gone); every CLI command
resolves its target from the current context with SHOAL_SERVER / SHOAL_TOKEN / SHOAL_CACERT (and
SHOAL_CONTEXT) taking precedence, as NOMAD_ADDR and NOMAD_TOKEN do. Files are 0600, the dir 0700.
The file is read with plain json and dataclasses, not pydantic: every command reads it before its
request, which then goes out without waiting for pydantic to load (about 60 ms of a start-up).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from shoal.client.transport import server_root
from shoal.errors import ConfigError

CONFIG_FILE = "config.json"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


@dataclass
class ContextEntry:
    server: str
    token: str = ""
    ca: str | None = None  # path of the pinned CA certificate
    servers: list[str] = field(default_factory=list)  # every server's URL, as they last said


@dataclass
class ConfigDoc:
    current: str | None = None
    contexts: dict[str, ContextEntry] = field(default_factory=dict)


def parse_config(data: Any) -> ConfigDoc:
    """The config file's JSON as a ConfigDoc; ValueError names the first thing wrong (unknown
    keys are ignored: a file written by a newer shoal still reads)."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    contexts = data.get("contexts") or {}
    if not isinstance(contexts, dict):
        raise ValueError("contexts: must be an object")
    return ConfigDoc(
        current=_optional_text(data, "current", "current"),
        contexts={name: _entry(name, value) for name, value in contexts.items()},
    )


def _entry(name: str, data: Any) -> ContextEntry:
    if not isinstance(data, dict):
        raise ValueError(f"contexts.{name}: must be an object")
    server = data.get("server")
    if not isinstance(server, str):
        raise ValueError(f"contexts.{name}.server: must be a string")
    token = _optional_text(data, "token", f"contexts.{name}.token") or ""
    servers = data.get("servers") or []
    if not isinstance(servers, list) or not all(isinstance(u, str) for u in servers):
        raise ValueError(f"contexts.{name}.servers: must be a list of URLs")
    ca = _optional_text(data, "ca", f"contexts.{name}.ca")
    return ContextEntry(server=server, token=token, ca=ca, servers=servers)


def _optional_text(data: dict[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{where}: must be a string")
    return value


@dataclass(frozen=True)
class Target:
    """What a command talks to: resolved from the context and the environment."""

    server: str
    token: str | None
    ca: Path | None
    context: str | None
    servers: tuple[str, ...] = ()  # the context's servers to fail over to (not with SHOAL_SERVER)


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    """$XDG_CONFIG_HOME/shoal, else ~/.config/shoal."""
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "shoal"


def context_name(server: str) -> str:
    """A default context name from a server URL: host, or host-port."""
    parsed = urlparse(server_root(server))
    host = (parsed.hostname or "cluster").replace(":", "-")
    return f"{host}-{parsed.port}" if parsed.port else host


def _write_private(path: Path, data: bytes) -> None:
    """Write atomically, readable by the owner only."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


class ContextStore:
    """The contexts file and the pinned CA certificates beside it."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or config_dir()
        self.path = self.directory / CONFIG_FILE

    def load(self) -> ConfigDoc:
        if not self.path.exists():
            return ConfigDoc()
        try:
            return parse_config(json.loads(self.path.read_bytes()))
        except ValueError as exc:  # json's errors are ValueErrors too
            raise ConfigError(f"{self.path}: not a shoal config file ({exc})") from exc

    def _ensure_dir(self) -> None:
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        self.directory.mkdir(mode=0o700, exist_ok=True)

    def save(self, doc: ConfigDoc) -> None:
        self._ensure_dir()
        _write_private(self.path, json.dumps(dataclasses.asdict(doc), indent=2).encode() + b"\n")

    def put(
        self, name: str, server: str, token: str, ca_pem: bytes | None, current: bool = True
    ) -> Path | None:
        """Add or replace a context (storing its CA); returns the CA's path."""
        if not NAME.match(name):
            raise ConfigError(f"context name {name!r}: letters, digits, '_', '.', '-' (at most 63)")
        self._ensure_dir()
        ca_path = self.directory / "ca" / f"{name}.pem" if ca_pem is not None else None
        if ca_path is not None and ca_pem is not None:
            _write_private(ca_path, ca_pem)
        doc = self.load()
        doc.contexts[name] = ContextEntry(
            server=server_root(server), token=token, ca=str(ca_path) if ca_path else None
        )
        doc.current = name if current or doc.current is None else doc.current
        self.save(doc)
        return ca_path

    def set_servers(self, name: str, servers: list[str]) -> None:
        """Keep the server URLs the cluster named, for the next command's failover."""
        doc = self.load()
        entry = doc.contexts.get(name)
        if entry is not None and entry.servers != servers:
            entry.servers = servers
            self.save(doc)

    def use(self, name: str) -> None:
        doc = self.load()
        if name not in doc.contexts:
            raise ConfigError(
                f"no context named {name!r} (have: {', '.join(sorted(doc.contexts)) or 'none'})"
            )
        doc.current = name
        self.save(doc)

    def remove(self, name: str) -> None:
        doc = self.load()
        if doc.contexts.pop(name, None) is None:
            raise ConfigError(f"no context named {name!r}")
        doc.current = None if doc.current == name else doc.current
        self.save(doc)
        (self.directory / "ca" / f"{name}.pem").unlink(missing_ok=True)


def resolve(doc: ConfigDoc, env: Mapping[str, str]) -> Target:
    """The target: SHOAL_CONTEXT picks the context, SHOAL_SERVER/TOKEN/CACERT override its fields."""
    name = env.get("SHOAL_CONTEXT") or doc.current
    if env.get("SHOAL_CONTEXT") and name not in doc.contexts:
        raise ConfigError(f"SHOAL_CONTEXT={name}: no such context")
    entry = doc.contexts.get(name) if name else None
    server = env.get("SHOAL_SERVER") or (entry.server if entry else "")
    if not server:
        raise ConfigError("no server: run `shoal login URL --token TOKEN` or set SHOAL_SERVER")
    token = env.get("SHOAL_TOKEN") or (entry.token if entry else "") or None
    ca = env.get("SHOAL_CACERT") or (entry.ca if entry else None)
    servers = tuple(entry.servers) if entry and not env.get("SHOAL_SERVER") else ()
    return Target(
        server=server_root(server),
        token=token,
        ca=Path(ca) if ca else None,
        context=name if entry else None,
        servers=servers,
    )

"""Registry credentials on the wire: which registry an image comes from, and a login for it.

The server stores a login per registry host (`shoal registry login`) and puts in each node's
state document only the logins for the hosts of that node's own images (control.desired); the
agent turns the one a pull needs into a short-lived auth file for skopeo (agent.images.auth).
"""

from __future__ import annotations

import re

from shoal.model.base import Wire

DOCKER_HUB = "docker.io"
HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"})
_HOST = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?(:[0-9]{1,5})?$|^\[[0-9a-f:]+\](:[0-9]{1,5})?$")


class RegistryAuth(Wire):
    """A login for one registry host, as a node that pulls from it receives it."""

    host: str  # "registry.example.com:5000", "docker.io"
    username: str
    password: str

    def __repr__(self) -> str:  # never in a log line or a traceback
        return f"RegistryAuth(host={self.host!r}, username={self.username!r}, password=***)"

    __str__ = __repr__


def registry_host(image: str) -> str:
    """The registry an image reference names (`docker.io` when it names none), as Docker reads it."""
    name = image.partition("@")[0]
    first, slash, _ = name.partition("/")
    if not (slash and ("." in first or ":" in first or first == "localhost")):
        return DOCKER_HUB
    try:
        return normalize_host(first)
    except ValueError:  # no such registry: the pull fails on its own, with nobody's login
        return first


def normalize_host(host: str) -> str:
    """`HOST[:PORT]` lower-cased, Docker Hub's aliases as `docker.io`; ValueError when malformed."""
    host = host.strip().lower().removeprefix("https://").removeprefix("http://").rstrip("/")
    if not _HOST.match(host):
        raise ValueError(f"{host!r} is not a registry host (HOST or HOST:PORT)")
    return DOCKER_HUB if host in HUB_ALIASES else host


def logins_for(images: list[str], logins: dict[str, RegistryAuth]) -> list[RegistryAuth]:
    """The logins (by host) for the registries these images come from, sorted by host."""
    hosts = {registry_host(image) for image in images}
    return [logins[host] for host in sorted(hosts) if host in logins]

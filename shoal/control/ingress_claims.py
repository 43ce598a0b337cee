"""Who may publish an ingress host: the project that holds it, never the server's own. Pure.

A host belongs to the project whose service published it first: another project's deploy that
names it (on any path) is refused, and so is the host the server's API and web UI are published
under (`ingress_host`). Inside a project two services may share a host on different paths. Called
by the deploy in its transaction, with the hosts the other services hold now.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shoal.model.compose_types import IngressSpec
from shoal.model.deploy_wire import qualified, split_qualified


@dataclass(frozen=True)
class Claim:
    """A stored service's ingress route."""

    service: str  # qualified
    host: str
    path: str


def conflicts(
    project: str, new: Mapping[str, IngressSpec | None], held: Sequence[Claim], server_host: str = ""
) -> list[str]:
    """One line per route of the deploy (short name → ingress) that another owner holds."""
    others = [c for c in held if c.service not in {qualified(project, n) for n in new}]
    lines = []
    for name, ingress in sorted(new.items()):
        if ingress is not None:
            lines += _refusals(project, name, ingress, others, server_host)
    lines += _within(new)
    return lines


def _refusals(
    project: str, name: str, ingress: IngressSpec, others: Sequence[Claim], server: str
) -> list[str]:
    key = f"services.{name}.x-shoal.ingress.host"
    host = ingress.host.lower()
    if server and host == server.lower():
        return [f"{key}: {ingress.host} is where shoal's own API and web UI are published"]
    for claim in others:
        owner, _ = split_qualified(claim.service)
        if claim.host.lower() != host:
            continue
        if owner != project:
            return [f"{key}: {ingress.host} is held by project {owner} (service {claim.service})"]
        if claim.path == ingress.path:
            return [f"{key}: {ingress.host}{ingress.path} is published by service {claim.service}"]
    return []


def _within(new: Mapping[str, IngressSpec | None]) -> list[str]:
    seen: dict[tuple[str, str], str] = {}
    lines = []
    for name, ingress in sorted(new.items()):
        if ingress is None:
            continue
        route = (ingress.host.lower(), ingress.path)
        if route in seen:
            lines.append(
                f"services.{name}.x-shoal.ingress.host: {ingress.host}{ingress.path}"
                f" is published by service {seen[route]} of this file as well"
            )
        seen.setdefault(route, name)
    return lines

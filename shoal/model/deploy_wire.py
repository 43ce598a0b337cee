"""The deploy request (`POST /api/v1/deploy`) as the CLI sends it and the server reads it.

Beside `shoal.model.compose_source`, which makes its parts: the interpolated document, the
project, the files it names, the services left out by profiles. The answer is read by
`shoal.client.receipt` (without pydantic: see there).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shoal.model.base import Wire

PROJECT_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"  # no dots: `<project>.<service>` splits at the first


def qualified(project: str, service: str) -> str:
    """The key a service is stored and addressed under: `<project>.<service>`."""
    return f"{project}.{service}"


def split_qualified(name: str) -> tuple[str, str]:
    """(project, service) of a qualified name; ("", name) for a short one."""
    project, dot, service = name.partition(".")
    return (project, service) if dot else ("", name)


Change = Literal["new", "changed", "unchanged", "prune"]


class DeployRequest(Wire):
    compose: str = Field(max_length=1_000_000)
    project: str = Field(default="", pattern=r"^$|" + PROJECT_PATTERN)  # "": the file's name:
    dry_run: bool = False  # validate and say what would change: nothing is stored
    prune: bool = False  # remove the project's services that the file no longer has
    files: dict[str, str] = Field(default_factory=dict, max_length=256)  # path -> base64 content
    keep: list[str] = Field(default_factory=list, max_length=1000)  # left out by profiles: not pruned


class ProjectInfo(Wire):
    """One project, as `GET /api/v1/projects` lists it."""

    name: str
    services: list[str]


class ServiceChange(Wire):
    """What a deploy does (or, dry, would do) to one service of the project."""

    name: str
    change: Change
    keys: list[str] = Field(default_factory=list)  # "image: app:1 → app:2", for a changed one

"""The admin's node policy: which roles or projects may use which powerful Compose keys.

A small YAML document (docs/policy.md) set with `shoal policy set -f`, stored versioned by the
server, parsed strictly here (an unknown key is an error naming it and its line) and turned, for
one deploy's role and project, into the `Grant` that `compose_policy` checks a deploy file
against. Shared by the server (enforcement) and the CLI (`policy set` checks the file first). Pure.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field, ValidationError, field_validator

from shoal.model.base import Strict, Wire
from shoal.model.compose_errors import Problems, add_validation
from shoal.model.compose_types import ComposeError
from shoal.model.compose_yaml import load

ROLES = ("viewer", "operator", "admin")
SECURITY_OPTS = ("seccomp=unconfined", "seccomp=custom", "no-new-privileges:false")
MAX_POLICY_BYTES = 256 * 1024


class PolicyError(ValueError):
    """A policy document that cannot be used: `lines` holds every fault, one a line."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__(lines[0])
        self.lines = lines


class BindPrefix(Strict):
    path: str = Field(min_length=1)
    mode: Literal["ro", "rw"] = "ro"

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must be an absolute path")
        if normalise(value) == "/":
            raise ValueError("/ itself cannot be granted")
        return normalise(value)


class PolicyGrant(Strict):
    """One entry of `grants:`: who (roles and/or projects) may use what."""

    name: str = ""
    roles: list[Literal["operator", "admin"]] = Field(default_factory=list)
    projects: list[str] = Field(default_factory=list)
    privileged: bool = False
    cap_add: list[str] = Field(default_factory=list)  # capability names, or ALL
    devices: list[str] = Field(default_factory=list)  # host device paths
    security_opt: list[Literal["seccomp=unconfined", "seccomp=custom", "no-new-privileges:false"]] = Field(
        default_factory=list
    )
    sysctls: list[str] = Field(default_factory=list)  # names, or "*" for any namespaced one
    network_mode_host: bool = False
    pid_host: bool = False
    userns_mode: bool = False
    binds: list[BindPrefix] = Field(default_factory=list)
    secrets: list[str] = Field(default_factory=list)  # global secrets it may use, or "*" for any

    @field_validator("cap_add")
    @classmethod
    def _caps(cls, value: list[str]) -> list[str]:
        return [_cap(c) for c in value]

    @field_validator("devices")
    @classmethod
    def _devices(cls, value: list[str]) -> list[str]:
        if any(not d.startswith("/dev/") for d in value):
            raise ValueError("device paths start with /dev/")
        return [normalise(d) for d in value]


class PolicyDocument(Strict):
    """The whole document."""

    metadata: bool = False  # containers may reach 169.254.169.254
    grants: list[PolicyGrant] = Field(default_factory=list)


class PolicyVersion(Wire):
    """One stored version of the policy, as the API shows it."""

    version: int
    document: str
    author: str = ""
    created: str = ""


def _cap(name: str) -> str:
    upper = name.strip().upper()
    return upper if upper == "ALL" or upper.startswith("CAP_") else f"CAP_{upper}"


def parse_policy(text: str) -> PolicyDocument:
    """The document, or PolicyError with every fault (key and line)."""
    if len(text.encode()) > MAX_POLICY_BYTES:
        raise PolicyError([f"the policy is larger than {MAX_POLICY_BYTES} bytes"])
    try:
        root = load(text) if text.strip() else {}
    except ComposeError as exc:
        raise PolicyError([str(exc)]) from None
    if root is None:
        root = {}
    if not isinstance(root, dict):
        raise PolicyError(["the policy must be a YAML mapping (metadata:, grants:)"])
    problems = Problems(root)
    try:
        return PolicyDocument.model_validate(root)
    except ValidationError as bad:
        add_validation(problems, bad, PolicyDocument, [], {})
    raise PolicyError(problems.lines() or ["invalid policy"])


def normalise(path: str) -> str:
    """A host path as the kernel would resolve its string: `.`/`..`, repeated and trailing
    slashes folded (`..` above / stays at /). Symlinks on disk are the agent's to refuse."""
    folded = posixpath.normpath("/" + path.lstrip("/"))
    return "/" + folded.lstrip("/")


def covers(outer: str, inner: str) -> bool:
    """Whether normalised `inner` is `outer` or lies under it."""
    return outer in (inner, "/") or inner.startswith(outer.rstrip("/") + "/")


@dataclass(frozen=True)
class Grant:
    """What one deploy (its token's role, its project) may use, from the policy; `sources` names
    the policy entries each power came from (for messages). The default grants nothing."""

    role: str = "operator"
    project: str = ""
    privileged: bool = False
    cap_add: frozenset[str] = frozenset()
    devices: frozenset[str] = frozenset()
    security_opt: frozenset[str] = frozenset()
    sysctls: frozenset[str] = frozenset()
    network_mode_host: bool = False
    pid_host: bool = False
    userns_mode: bool = False
    binds: tuple[tuple[str, str], ...] = ()  # (prefix, "ro"|"rw")
    secrets: frozenset[str] = frozenset()  # global secrets granted (a project's own need no grant)
    forbidden: tuple[str, ...] = field(default=())  # host paths no bind may reach
    reserved_ports: tuple[tuple[str, str], ...] = ()  # ("51820/udp", what holds it): never published

    def may_use_global_secret(self, name: str) -> bool:
        """Admins may (as before projects had secrets); others where the policy grants it."""
        return self.role == "admin" or name in self.secrets or "*" in self.secrets

    def bind_mode(self, path: str) -> str | None:
        """The most permissive mode a prefix grants for `path` ("rw" > "ro"), None if none."""
        modes = {mode for prefix, mode in self.binds if covers(prefix, path)}
        return "rw" if "rw" in modes else ("ro" if modes else None)

    def forbids(self, path: str) -> str | None:
        """The forbidden path a bind of `path` would expose (it or one under it), if any."""
        for bad in self.forbidden:
            if bad == "/" and path != "/":
                continue  # / itself only: everything lies under it
            if covers(path, bad) or covers(bad, path):
                return bad
        return None


GrantOf = Callable[[str], Grant]  # the grant for a project (the server's, for one token's role)


def applies(grant: PolicyGrant, role: str, project: str) -> bool:
    return role in grant.roles or project in grant.projects


def grant_for(
    doc: PolicyDocument,
    role: str,
    project: str,
    forbidden: tuple[str, ...],
    reserved_ports: tuple[tuple[str, str], ...] = (),
) -> Grant:
    """The union of every entry that names the role or the project; `forbidden` host paths and
    `reserved_ports` (the node's own: SSH, WireGuard, API, agent) stay refused whatever it says."""
    found = [g for g in doc.grants if applies(g, role, project)]
    return Grant(
        role=role,
        project=project,
        privileged=any(g.privileged for g in found),
        cap_add=frozenset(c for g in found for c in g.cap_add),
        devices=frozenset(d for g in found for d in g.devices),
        security_opt=frozenset(s for g in found for s in g.security_opt),
        sysctls=frozenset(s for g in found for s in g.sysctls),
        network_mode_host=any(g.network_mode_host for g in found),
        pid_host=any(g.pid_host for g in found),
        userns_mode=any(g.userns_mode for g in found),
        binds=tuple((b.path, b.mode) for g in found for b in g.binds),
        secrets=frozenset(name for g in found for name in g.secrets),
        forbidden=tuple(normalise(p) for p in forbidden),
        reserved_ports=reserved_ports,
    )


# Never bindable, whatever the policy: the host's kernel interfaces, its root, shoal's own data and
# the container runtime's state (a bind of one of their parents exposes them too).
ALWAYS_FORBIDDEN = (
    "/",
    "/proc",
    "/sys",
    "/dev",
    "/var/lib/shoal",
    "/run/runc",
    "/run/shoal",
    "/run/containerd",
    "/var/run/runc",
    "/usr/bin/runc",
    "/usr/sbin/runc",
    "/usr/bin/conmon",
    "/usr/libexec/podman/conmon",
)


def forbidden_paths(*configured: str) -> tuple[str, ...]:
    """ALWAYS_FORBIDDEN plus the configured data/runtime directories, normalised, each once."""
    out: list[str] = []
    for path in (*ALWAYS_FORBIDDEN, *configured):
        if path and normalise(path) not in out:
            out.append(normalise(path))
    return tuple(out)

"""Thin wrapper over skopeo: argument lists for copy, running them, pure parsers.

The image store copies every image into ONE shared OCI layout directory, which acts as a
content-addressed blob store: skopeo's OCI destination reuses a blob already present by digest,
so layers shared between images (or pulled before) are not fetched again. Insecure (HTTP)
registries get ``--src-tls-verify=false``; credentials come from ``--authfile``.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from shoal.errors import ShoalError

DOCKER_HUB = "docker.io"
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")


class SkopeoError(ShoalError):
    """skopeo failed; the message is its last line of stderr."""


@dataclass(frozen=True)
class Reference:
    """An image reference split into registry, repository, and tag or digest."""

    registry: str
    repository: str
    tag: str | None
    digest: str | None

    def transport(self) -> str:
        """The ``docker://`` reference skopeo understands (digest wins over tag)."""
        suffix = f"@{self.digest}" if self.digest else f":{self.tag or 'latest'}"
        return f"docker://{self.registry}/{self.repository}{suffix}"


def parse_reference(ref: str) -> Reference:
    """Split ``[registry/]repo[:tag][@sha256:…]`` the way Docker does (docker.io by default)."""
    name, _, digest = ref.partition("@")
    if digest and not _DIGEST.match(digest):
        raise SkopeoError(f"image {ref}: digest {digest!r} is not sha256:<64 hex>")
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, rest
    else:
        registry, path = DOCKER_HUB, name
    repo, colon, tag = path.rpartition(":") if ":" in path else (path, "", "")
    if not _REPOSITORY.fullmatch(repo):
        raise SkopeoError(f"image {ref}: {repo or path!r} is not a valid repository name")
    if registry == DOCKER_HUB and "/" not in repo:
        repo = f"library/{repo}"
    return Reference(registry, repo, tag if colon else (None if digest else "latest"), digest or None)


def tls_flags(ref: Reference, insecure: Sequence[str], direction: str = "src") -> list[str]:
    """``--src-tls-verify=false`` when the reference's registry is configured insecure."""
    return [f"--{direction}-tls-verify=false"] if ref.registry in insecure else []


def auth_flags(auth_file: Path | None, direction: str = "src") -> list[str]:
    """``--src-authfile FILE`` when an auth file is configured."""
    return [f"--{direction}-authfile", str(auth_file)] if auth_file else []


def copy_argv(
    ref: Reference, layout: Path, name: str, insecure: Sequence[str], auth_file: Path | None
) -> list[str]:
    """``skopeo copy`` of ``ref`` into the shared OCI layout ``layout`` under ``name``."""
    return [
        "skopeo",
        "copy",
        "--quiet",
        *tls_flags(ref, insecure),
        *auth_flags(auth_file),
        ref.transport(),
        f"oci:{layout}:{name}",
    ]


def run(argv: Sequence[str], timeout_s: float = 600) -> bytes:
    """Run skopeo; a failure raises ``SkopeoError`` with its last stderr line."""
    try:
        proc = subprocess.run(list(argv), capture_output=True, check=False, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise SkopeoError(f"skopeo {argv[1]} timed out after {timeout_s:.0f}s") from exc
    if proc.returncode != 0:
        raise SkopeoError(
            f"skopeo {argv[1]} {argv[-2] if argv[1] == 'copy' else argv[-1]}: {last_error(proc.stderr)}"
        )
    return proc.stdout


def last_error(stderr: bytes) -> str:
    """The useful last line of skopeo's stderr (its logrus ``msg="…"`` when present)."""
    lines = stderr.decode(errors="replace").strip().splitlines() or ["failed without output"]
    match = re.search(r'msg="((?:[^"\\]|\\.)*)"', lines[-1])
    return match.group(1).replace('\\"', '"') if match else lines[-1]


def layout_name(ref: str) -> str:
    """The tag under which ``ref`` is kept in the shared layout (ref names have a strict syntax)."""
    return "ref-" + hashlib.sha256(ref.encode()).hexdigest()[:32]

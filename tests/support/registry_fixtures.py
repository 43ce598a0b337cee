"""Session fixtures: a real docker-registry on loopback and the test images pushed to it.

``registry`` is ``127.0.0.1:PORT`` (ephemeral port, temp root, always stopped). ``test_images``
maps a name to a pullable reference (``ADDR/shi/NAME:latest``). Images are built offline from
busybox-static with umoci (``shoal.sandbox.images``), cached by content under the temp dir so
later sessions only push them. The hostile images each try one escape towards ``CANARY``;
``BOMB`` is an unpack bomb (a sparse file of 1 TiB).
"""

from __future__ import annotations

import gzip
import io
import shutil
import socket
import tarfile
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.sandbox.images import (
    BASE_GROUP,
    BASE_USERS,
    ImageSpec,
    LayerStep,
    cached_build,
    example_app_spec,
    push,
    tar_entry,
)
from shoal.sandbox.registry import start_registry

CANARY = Path(tempfile.gettempdir()) / "shi-canary"
CACHE = Path(tempfile.gettempdir()) / "shi-image-cache"
CLIMB = "../" * 24
HOSTILE = (
    "evil-dotdot",
    "evil-absolute",
    "evil-symlink-climb",
    "evil-hardlink",
    "evil-device",
    "evil-symlink-parent",
)
BOMB = "evil-sparse-bomb"  # a layer of a few hundred bytes that unpacks to a 1 TiB sparse file


def bcrypt_line(user: str, password: str) -> str:
    """An htpasswd line with a bcrypt hash (libxcrypt's, through the stdlib ``crypt``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt

        return f"{user}:{crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))}\n"


def free_port() -> int:
    """An ephemeral TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def crafted_tar(*entries: tuple[tarfile.TarInfo, bytes]) -> bytes:
    """An uncompressed tar of exactly these entries, in order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def file_entry(name: str, data: bytes = b"pwned\n") -> tuple[tarfile.TarInfo, bytes]:
    """A regular file entry."""
    return tar_entry(name, size=len(data)), data


def link_entry(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, bytes]:
    """A symlink (or, with ``LNKTYPE``, hard link) entry."""
    return tar_entry(name, kind, linkname=target, mode=0o777), b""


def device_entry(name: str, major: int = 1, minor: int = 1) -> tuple[tarfile.TarInfo, bytes]:
    """A character device entry (1:1 is /dev/mem)."""
    info = tar_entry(name, tarfile.CHRTYPE, mode=0o666)
    info.devmajor, info.devminor = major, minor
    return info, b""


def hostile_layers(canary: Path = CANARY) -> dict[str, bytes]:
    """One crafted layer per escape, each aimed at ``canary`` (or a host file)."""
    rel = str(canary).lstrip("/")
    return {
        "evil-dotdot": crafted_tar(file_entry(f"{CLIMB}{rel}/dotdot")),
        "evil-absolute": crafted_tar(file_entry(f"/{rel}/absolute")),
        "evil-symlink-climb": crafted_tar(
            link_entry("escape", f"{CLIMB}{rel}"), file_entry("escape/through-symlink")
        ),
        "evil-hardlink": crafted_tar(link_entry("passwd-link", f"{CLIMB}etc/passwd", tarfile.LNKTYPE)),
        "evil-device": crafted_tar(device_entry("dev/evil-mem")),
        "evil-symlink-parent": crafted_tar(
            link_entry("redirect", f"/{rel}"), file_entry("redirect/through-parent")
        ),
    }


def sparse_entry(name: str, apparent: int, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    """A PAX 1.0 sparse file of ``apparent`` bytes: all holes but ``data`` at its very end."""
    offset = apparent - len(data)
    sparse_map = f"1\n{offset}\n{len(data)}\n".encode().ljust(512, b"\0")
    info = tar_entry(f"GNUSparseFile.0/{name}", size=512 + len(data))
    info.pax_headers = {
        "GNU.sparse.major": "1",
        "GNU.sparse.minor": "0",
        "GNU.sparse.name": name,
        "GNU.sparse.realsize": str(apparent),
    }
    return info, sparse_map + data


def sparse_bomb(apparent: int = 1 << 40) -> bytes:
    """A gzipped layer of a couple of hundred bytes that unpacks to a 1 TiB sparse file."""
    return gzip.compress(crafted_tar(sparse_entry("bomb", apparent)), mtime=0)


def multilayer_spec() -> ImageSpec:
    """Three layers: files, then whiteouts and an opaque dir, then more files."""
    first = LayerStep(
        files={
            "data/keep.txt": b"keep\n",
            "data/gone.txt": b"gone\n",
            "opq/old1.txt": b"old1\n",
            "opq/sub/old2.txt": b"old2\n",
            "etc/motd": b"layer one\n",
        }
    )
    second = LayerStep(
        files={"opq/new.txt": b"new\n", "etc/motd": b"layer two\n"},
        delete=("data/gone.txt", "bin/vi"),
        opaque=("opq",),
    )
    third = LayerStep(files={"data/later.txt": b"later\n"}, modes={"data/later.txt": 0o600})
    return ImageSpec(layers=(first, second, third), cmd=("sleep", "3600"))


def user_spec() -> ImageSpec:
    """USER is the named non-root user ``app`` (1000:1000) from /etc/passwd and /etc/group."""
    users = {
        "etc/passwd": (BASE_USERS + "app:x:1000:1000:app user:/home/app:/bin/sh\n").encode(),
        "etc/group": (BASE_GROUP + "app:x:1000:\n").encode(),
        "home/app/.keep": b"",
    }
    return ImageSpec(layers=(LayerStep(files=users),), cmd=("id",), user="app", workdir="/home/app")


def image_specs() -> dict[str, ImageSpec]:
    """Every test image by name (the hostile ones sit on a busybox base)."""
    specs = {
        "multilayer": multilayer_spec(),
        "user": user_spec(),
        "exit3": ImageSpec(cmd=("sh", "-c", "echo failing; exit 3")),
        "sleep": ImageSpec(cmd=("sleep", "3600")),
        "httpd": example_app_spec(),
        "healthy": _with_healthcheck(["CMD-SHELL", "test -f /etc/hostname"]),
        "sick": _with_healthcheck(["CMD", "false"]),
    }
    for name, layer in hostile_layers().items():
        specs[name] = ImageSpec(raw_layers=(layer,), cmd=("true",))
    specs[BOMB] = ImageSpec(raw_layers=(crafted_tar(sparse_entry("bomb", 1 << 40)),), cmd=("true",))
    return specs


def _with_healthcheck(test: list[str]) -> ImageSpec:
    """A sleeping image whose own HEALTHCHECK runs ``test`` every 0.3 s (durations in ns)."""
    check = {"Test": test, "Interval": 300_000_000, "Timeout": 2_000_000_000, "Retries": 2}
    return ImageSpec(cmd=("sleep", "3600"), healthcheck=check)


@pytest.fixture(scope="session")
def registry() -> Iterator[str]:
    """A docker-registry on 127.0.0.1 at a free port, stopped (and its root removed) at the end."""
    root = Path(tempfile.mkdtemp(prefix="shi-registry-"))
    try:
        server = start_registry(root, f"127.0.0.1:{free_port()}")
        try:
            yield server.addr
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def test_images(registry: str) -> dict[str, str]:
    """Name → reference of every test image (plus ``multilayer-zstd``), pushed to ``registry``."""
    refs = {}
    for name, spec in image_specs().items():
        layout = cached_build(spec, CACHE)
        refs[name] = f"{registry}/shi/{name}:latest"
        push(layout, "latest", refs[name])
    refs["multilayer-zstd"] = f"{registry}/shi/multilayer-zstd:latest"
    push(cached_build(multilayer_spec(), CACHE), "latest", refs["multilayer-zstd"], compress="zstd")
    return refs

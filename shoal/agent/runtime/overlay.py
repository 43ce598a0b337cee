"""A container's root filesystem: an overlay of the image's layers with its own upper/work dirs.

Used by agent.runtime: ``mount_root`` before the first start (and again after a reboot),
``unmount_root`` at delete. Also reads the image's /etc/passwd and /etc/group without following
symlinks, which are the image's (untrusted) and would otherwise resolve on the host, and only
when they are regular files (a FIFO there would block the agent's start).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import os
import stat
import subprocess
from collections.abc import Sequence
from pathlib import Path

from shoal.errors import ShoalError


class OverlayError(ShoalError):
    """The overlay root could not be mounted or unmounted."""


def overlay_options(lower_dirs: Sequence[Path], upper: Path, work: Path) -> str:
    """mount -o text: lowerdir lists the top layer first, so the layers (lowest first) reversed."""
    paths = [*map(str, lower_dirs), str(upper), str(work)]
    bad = [p for p in paths if "," in p or ":" in p]
    if bad or not lower_dirs:
        raise OverlayError(f"overlay: unusable layer paths {bad or 'none given'}")
    lower = ":".join(str(p) for p in reversed(lower_dirs))
    return f"lowerdir={lower},upperdir={upper},workdir={work}"


def mount_root(lower_dirs: Sequence[Path], bundle: Path) -> Path:
    """Mounts ``bundle/rootfs`` (idempotent) and returns it."""
    rootfs, upper, work = bundle / "rootfs", bundle / "upper", bundle / "work"
    for d in (rootfs, upper, work):
        d.mkdir(parents=True, exist_ok=True)
    if os.path.ismount(rootfs):
        return rootfs
    options = overlay_options(lower_dirs, upper, work).encode()
    # mount(2) directly: this is on every container start's critical path, a mount(8) is not free
    if _libc().mount(b"overlay", bytes(rootfs), b"overlay", 0, options) != 0:
        err = ctypes.get_errno()
        raise OverlayError(f"overlay mount at {rootfs}: {os.strerror(err)}")
    return rootfs


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def unmount_root(bundle: Path) -> None:
    rootfs = bundle / "rootfs"
    if os.path.ismount(rootfs):
        proc = subprocess.run(["umount", str(rootfs)], check=False, capture_output=True, text=True)
        if proc.returncode != 0:
            raise OverlayError(f"unmount {rootfs}: {proc.stderr.strip()}")


def read_image_file(rootfs: Path, relative: str, limit: int = 1 << 20) -> str:
    """A small text file of the image, "" if absent, reached through a symlink or not a regular
    file (a FIFO would block the open, a device could be endless): every component is opened
    with ``O_NOFOLLOW``, the leaf also ``O_NONBLOCK``, then checked with ``fstat``."""
    fd = os.open(rootfs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        parts = relative.split("/")
        for i, part in enumerate(parts):
            leaf = i == len(parts) - 1
            next_fd = _open_component(fd, part, os.O_NONBLOCK if leaf else os.O_DIRECTORY)
            if next_fd is None:
                return ""
            os.close(fd)
            fd = next_fd
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return ""
        return os.read(fd, limit).decode(errors="replace")
    finally:
        os.close(fd)


def _open_component(dir_fd: int, part: str, extra: int) -> int | None:
    """Open one path component below ``dir_fd`` without following it; None when it is absent,
    a symlink or not a directory on the way."""
    try:
        return os.open(part, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | extra, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR, errno.ENXIO):
            return None
        raise

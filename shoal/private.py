"""Shoal's data directories kept from the machine's other users (agent and server, at start).

A data dir (`/var/lib/shoal`, the server's) and what lies directly in it become 0700 (dirs) and
0600 (files): state files, bundles' config.json (env values), image layers (setuid binaries),
volumes. A directory that leads to one owned by another user (the managed PostgreSQL's, which
runs as `postgres`) is 0711 instead: traversable, never listable. Deeper entries keep their own
modes (a volume's root or an image's files are the container's business): the dirs above them
already keep other users out.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

PRIVATE_DIR = 0o700
PASSAGE_DIR = 0o711  # leads to another user's directory (PostgreSQL's)
PRIVATE_FILE = 0o600


def make_private(root: Path) -> None:
    """`root` (made if missing) and its direct entries private; see the module docstring."""
    root.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    foreign = False
    for child in _entries(root):
        foreign |= _tighten(child)
    root.chmod(PASSAGE_DIR if foreign else PRIVATE_DIR)


def _tighten(path: Path) -> bool:
    """Make one entry private; True when it is, or leads to, another user's directory."""
    info = path.lstat()
    if info.st_uid != os.geteuid():
        return stat.S_ISDIR(info.st_mode)
    if stat.S_ISREG(info.st_mode):
        os.chmod(path, PRIVATE_FILE)
        return False
    if not stat.S_ISDIR(info.st_mode):
        return False  # symlinks, sockets, fifos: left alone
    foreign = any(_owned_by_other(p) for p in _entries(path))
    os.chmod(path, PASSAGE_DIR if foreign else PRIVATE_DIR)
    return foreign


def _owned_by_other(path: Path) -> bool:
    info = path.lstat()
    return stat.S_ISDIR(info.st_mode) and info.st_uid != os.geteuid()


def _entries(path: Path) -> list[Path]:
    with contextlib.suppress(FileNotFoundError):
        return list(path.iterdir())
    return []

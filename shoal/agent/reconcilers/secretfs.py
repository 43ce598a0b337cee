"""Secrets on tmpfs: the files the containers reconciler binds at /run/secrets/NAME.

Secret values come in the node state document (only those this node's containers use); they
are written under one tmpfs (mounted here when the directory is not on tmpfs already), one
directory per container, files 0400, and removed with the container.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from shoal.errors import ShoalError


def mount_fs_type(mountinfo: str, path: str) -> str:
    """The filesystem type of the mount holding `path`, from /proc/self/mountinfo text."""
    best, best_type = "", ""
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        if " - " not in line or len(fields) < 5:
            continue
        point = fields[4].replace("\\040", " ")
        fs_type = line.split(" - ", 1)[1].split(" ")[0]
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, best_type = point, fs_type
    return best_type


class SecretFs:
    def __init__(self, root: Path, size: str = "16m") -> None:
        self.root = root
        self.size = size
        self.mounted = False  # whether this object mounted the tmpfs (and so unmounts it)

    def ensure(self) -> None:
        """Make sure `root` exists and is on tmpfs."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = Path("/proc/self/mountinfo").read_text()
        if mount_fs_type(info, str(self.root.resolve())) == "tmpfs":
            return
        argv = ["mount", "-t", "tmpfs", "-o", f"mode=0700,size={self.size}", "shoal-secrets", str(self.root)]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ShoalError(f"cannot mount tmpfs for secrets on {self.root}: {done.stderr.strip()}")
        self.mounted = True

    def write(self, container_id: str, values: dict[str, bytes]) -> Path | None:
        """Write one container's secrets (0400, one file per name); their directory, if any."""
        if not values:
            return None
        self.ensure()
        target = self.root / container_id
        target.mkdir(mode=0o700, exist_ok=True)
        for name, value in values.items():
            _write_0400(target / name, value)
        return target

    def remove(self, container_id: str) -> None:
        shutil.rmtree(self.root / container_id, ignore_errors=True)

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "--lazy", str(self.root)], capture_output=True, check=False)
            self.mounted = False


def _write_0400(path: Path, value: bytes) -> Path:
    if "/" in path.name or path.name in ("", ".", ".."):
        raise ShoalError(f"secret name {path.name!r} is not a file name")
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o400)
    with os.fdopen(fd, "wb") as handle:
        handle.write(value)
    os.replace(tmp, path)
    return path

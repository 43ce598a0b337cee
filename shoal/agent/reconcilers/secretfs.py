"""Secrets on tmpfs: the files the containers reconciler binds at /run/secrets/NAME.

Secret values come in the node state document (only those this node's containers use); they
are written under one tmpfs (mounted here when the directory is not on tmpfs already), one
directory per container, each file with the mode and owner its Compose `secrets` entry gives
(0400 root when it gives none), and removed with the container.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from shoal.errors import ShoalError
from shoal.model.container import ContainerSpec, Mount
from shoal.model.state import NodeState


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


@dataclass(frozen=True)
class SecretFile:
    value: bytes
    mode: int = 0o400
    uid: int = 0
    gid: int = 0


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

    def write(self, container_id: str, files: dict[str, SecretFile]) -> Path | None:
        """Write one container's secrets (one file per name); their directory, if any."""
        if not files:
            return None
        self.ensure()
        target = self.root / container_id
        target.mkdir(mode=0o700, exist_ok=True)
        for name, file in files.items():
            _write(target / name, file)
        return target

    def remove(self, container_id: str) -> None:
        shutil.rmtree(self.root / container_id, ignore_errors=True)

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "--lazy", str(self.root)], capture_output=True, check=False)
            self.mounted = False


def _write(path: Path, file: SecretFile) -> Path:
    if "/" in path.name or path.name in ("", ".", ".."):
        raise ShoalError(f"secret name {path.name!r} is not a file name")
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o400)
    with os.fdopen(fd, "wb") as handle:
        handle.write(file.value)
        os.fchown(handle.fileno(), file.uid, file.gid)
        os.fchmod(handle.fileno(), file.mode & 0o777)  # after the chown, which would clear set-id bits
    os.replace(tmp, path)
    return path


def secret_files(spec: ContainerSpec, state: NodeState) -> dict[str, SecretFile]:
    """The files of the container's secrets, with the mode and owner of their mount."""
    mounts = {m.source or m.target: m for m in spec.mounts if m.kind == "secret"}
    values = {s.name: base64.b64decode(s.value_b64) for s in state.secrets if s.name in mounts}
    missing = sorted(set(mounts) - set(values))
    if missing:
        raise ShoalError(f"secret {missing[0]!r} was not sent to this node")
    return {name: secret_file(value, mounts[name]) for name, value in values.items()}


def secret_file(value: bytes, mount: Mount) -> SecretFile:
    mode = 0o400 if mount.mode is None else mount.mode
    return SecretFile(value, mode, mount.uid or 0, mount.gid or 0)

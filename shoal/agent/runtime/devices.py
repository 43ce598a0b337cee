"""Device nodes and capabilities of this node, for `devices:` and `privileged` (all of them).

Under `shoal.agent.runtime`: it stats host paths, which the pure renderer (render.oci_security)
cannot.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from shoal.agent.render.oci_security import HostDevice, SecurityError, capability_names
from shoal.model.security_keys import parse_device

# Docker skips these when it copies the host's /dev into a privileged container.
SKIPPED = ("/dev/pts/", "/dev/mqueue/", "/dev/shm/", "/dev/console", "/dev/ptmx")


def device(path: str) -> HostDevice:
    """The node's device at `path` (links followed); a one-line error otherwise."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise SecurityError(f"device {path}: {e.strerror.lower() if e.strerror else e}") from None
    if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)):
        raise SecurityError(f"device {path}: not a character or block device")
    kind = "c" if stat.S_ISCHR(st.st_mode) else "b"
    return HostDevice(path, kind, os.major(st.st_rdev), os.minor(st.st_rdev),
                      stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)  # fmt: skip


def granted(devices: Sequence[str]) -> dict[str, HostDevice]:
    """host path -> device, for each `devices:` entry."""
    return {host: device(host) for host, _, _ in (parse_device(d) for d in devices)}


def all_devices(root: Path = Path("/dev")) -> list[HostDevice]:
    """Every device node under /dev, as Docker gives a privileged container."""
    return sorted(_walk(root), key=lambda d: d.path)


def _walk(root: Path) -> Iterator[HostDevice]:
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            if path.startswith(SKIPPED) or path + "/" in SKIPPED or os.path.islink(path):
                continue
            try:
                yield device(path)
            except SecurityError:
                continue


def host_capabilities() -> tuple[str, ...]:
    """The agent's own bounding set: the most a privileged container can be given."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return capability_names(int(line.split()[1], 16))
    return ()

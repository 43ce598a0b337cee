"""The long-lived process that holds a sandbox node's mount and UTS namespaces.

Started by `nodes.start_holder` as ``nsenter --net=/run/netns/sbx-nX unshare --mount --uts
--propagation private -- python -m shoal.sandbox.holder ...``: it mounts the node's private /run
(tmpfs), binds the node's state dir at /var/lib/shoal and an upstream-less resolv.conf, sets the
hostname, writes its ready file and sleeps until it is told to stop. Every process of the node
enters its namespaces with ``nsenter --target <holder pid> --net --mount --uts``.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from shoal.sandbox.layout import NODE_STATE

RESOLV = Path("/etc/resolv.conf")
RESOLV_TEXT = "# shoal sandbox node: no upstream DNS; the sandbox forwards nowhere outside it\n"


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True)


def prepare(hostname: str, state_dir: Path, resolv: Path) -> None:
    """Mount the node's own /run, state dir and resolv.conf, and name it."""
    mount("-t", "tmpfs", "-o", "mode=0755,nosuid,nodev", "tmpfs", "/run")
    for sub in ("netns", "wireguard", "lock"):
        (Path("/run") / sub).mkdir(mode=0o755, exist_ok=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    NODE_STATE.mkdir(parents=True, exist_ok=True)
    mount("--bind", str(state_dir), str(NODE_STATE))
    resolv.write_text(RESOLV_TEXT)
    if RESOLV.exists() and not RESOLV.is_symlink():
        mount("--bind", str(resolv), str(RESOLV))
    socket.sethostname(hostname)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="shoal.sandbox.holder")
    parser.add_argument("--hostname", required=True)
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--resolv", required=True, type=Path)
    parser.add_argument("--ready", required=True, type=Path)
    args = parser.parse_args(argv)
    prepare(args.hostname, args.state_dir, args.resolv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    args.ready.write_text(f"{os.getpid()}\n")
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main())

"""A local OCI registry (Debian's docker-registry) run as a child process.

Used by the test fixtures and by the sandbox, which may start it inside a network namespace by
passing an argv prefix such as ``["nsenter", "--net=/run/netns/X"]``. Serves plain HTTP: clients
push with ``--dest-tls-verify=false`` and pull with ``--src-tls-verify=false``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from shoal.errors import ShoalError
from shoal.pids import wait_gone

REGISTRY_BIN = "/usr/bin/docker-registry"


class RegistryError(ShoalError):
    """The registry did not start or answer."""


def registry_config(root: Path, addr: str, htpasswd: Path | None = None) -> str:
    """The registry's configuration (JSON is valid YAML): root dir, listen address, optional
    htpasswd (bcrypt) basic auth."""
    doc: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(root)}, "delete": {"enabled": True}},
        "http": {"addr": addr},
    }
    if htpasswd is not None:
        doc["auth"] = {"htpasswd": {"realm": "shoal", "path": str(htpasswd)}}
    return json.dumps(doc, indent=2)


@dataclass
class Registry:
    """A running registry: its address, data dir and process id."""

    addr: str
    root: Path
    pid: int
    log_path: Path

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop the registry process (by pid) and reap it."""
        stop_pid(self.pid, grace_s)


def start_registry(
    root: Path, addr: str, prefix: Sequence[str] = (), timeout_s: float = 15.0, htpasswd: Path | None = None
) -> Registry:
    """Start docker-registry serving ``root`` on ``addr`` and wait until ``/v2/`` answers."""
    root.mkdir(parents=True, exist_ok=True)
    config = root / "config.yml"
    config.write_text(registry_config(root / "data", addr, htpasswd))
    log_path = root / "registry.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [*prefix, REGISTRY_BIN, "serve", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    registry = Registry(addr=addr, root=root, pid=proc.pid, log_path=log_path)
    try:
        wait_ready(registry, proc, timeout_s, prefix)
    except BaseException:
        registry.stop()
        raise
    return registry


def wait_ready(
    registry: Registry, proc: subprocess.Popen[bytes], timeout_s: float, prefix: Sequence[str]
) -> None:
    """Poll ``/v2/`` until it answers 200, the process dies, or the time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = registry.log_path.read_text(errors="replace").strip().splitlines()[-1:]
            raise RegistryError(f"registry on {registry.addr} exited: {' '.join(tail)}")
        if answers(registry.addr, prefix):
            return
        time.sleep(0.05)
    raise RegistryError(f"registry on {registry.addr} did not answer /v2/ within {timeout_s}s")


def answers(addr: str, prefix: Sequence[str] = ()) -> bool:
    """Whether ``http://ADDR/v2/`` answers 200 or 401 (through the netns prefix when given)."""
    url = f"http://{addr}/v2/"
    if prefix:
        probe = [*prefix, "/usr/bin/busybox", "wget", "-q", "-O", "/dev/null", url]
        proc = subprocess.run(probe, capture_output=True, text=True, check=False)
        return proc.returncode == 0 or "401" in proc.stderr
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status == 200)
    except urllib.error.HTTPError as exc:
        return exc.code == 401
    except (urllib.error.URLError, OSError):
        return False


def stop_pid(pid: int, grace_s: float = 5.0) -> None:
    """SIGTERM the process group led by ``pid``, SIGKILL after ``grace_s``, and reap it."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if wait_gone(pid, grace_s, poll_s=0.05):
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    wait_gone(pid, float("inf"), poll_s=0.05)

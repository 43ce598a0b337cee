"""The per-container monitor: conmon runs ``runc create``, keeps stdio, survives the agent.

Used by agent.runtime for each start. conmon daemonizes, keeps the container's stdout/stderr in a
k8s-file log (one timestamped line each), writes the exit code into the exit dir when the container
ends, and reopens its log when told through the bundle's ``ctl`` FIFO (how log rotation works).
The container pid comes back over the ``_OCI_SYNCPIPE`` pipe as ``{"data": PID}``.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from shoal.errors import ShoalError

CTL_REOPEN_LOG = "2 0 0\n"
CLOCK_REALTIME_COARSE = 5  # Linux's clockid (not in Python's time module)


def exit_clock() -> float:
    """Now, on the clock the kernel stamps file times with (the exit file's mtime is the finish
    time). Where file times are coarse (kernels before 6.13's multigrain timestamps, as Debian
    12's 6.1), time.time() runs up to a tick (4 ms at HZ=250) ahead of them, so a start stamped
    with it could come after the finish of a process that exits within the same tick."""
    return time.clock_gettime(CLOCK_REALTIME_COARSE)


class ConmonError(ShoalError):
    """conmon could not create the container; the message is runc's reason."""


@dataclass(frozen=True)
class ConmonPaths:
    """Where one container's monitor keeps its files."""

    bundle: Path
    log_file: Path
    exit_dir: Path
    runc_root: Path

    @property
    def pid_file(self) -> Path:
        return self.bundle / "container.pid"

    @property
    def conmon_pid_file(self) -> Path:
        return self.bundle / "conmon.pid"


def conmon_args(conmon: str, runc: str, container_id: str, paths: ConmonPaths) -> list[str]:
    """The conmon command line for one container (pure)."""
    return [
        conmon, "--api-version", "1",
        "-c", container_id, "-u", container_id, "-n", container_id,
        "-r", runc, "--runtime-arg", "--root", "--runtime-arg", str(paths.runc_root),
        "-b", str(paths.bundle), "-p", str(paths.pid_file), "-P", str(paths.conmon_pid_file),
        "--exit-dir", str(paths.exit_dir), "-l", f"k8s-file:{paths.log_file}",
        "--full-attach", "--log-level", "error",
    ]  # fmt: skip


def parse_sync(text: str) -> tuple[int, str]:
    """conmon's sync-pipe message ``{"data": N, "message": "..."}`` → (N, message)."""
    msg = json.loads(text)
    return int(msg["data"]), str(msg.get("message", ""))


def launch(argv: list[str], container_id: str, err_file: Path, timeout: float = 30.0) -> int:
    """Starts conmon (which creates the container) and returns the container's pid."""
    read_fd, write_fd = os.pipe()
    try:
        env = {**os.environ, "_OCI_SYNCPIPE": str(write_fd)}
        with err_file.open("wb") as err:
            proc = subprocess.Popen(
                argv, env=env, pass_fds=(write_fd,), stdin=subprocess.DEVNULL, stdout=err, stderr=err
            )
        os.close(write_fd)
        write_fd = -1
        if proc.wait(timeout=timeout) != 0:
            raise ConmonError(f"container {container_id}: conmon: {_last_line(err_file)}")
        return _read_pid(read_fd, container_id)
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)


def _last_line(path: Path) -> str:
    lines = path.read_text(errors="replace").strip().splitlines()
    return lines[-1] if lines else "failed"


def _read_pid(read_fd: int, container_id: str) -> int:
    with os.fdopen(os.dup(read_fd), "rb") as pipe:
        line = pipe.readline().decode(errors="replace")
    if not line.strip():
        raise ConmonError(f"container {container_id}: conmon exited before creating it")
    pid, message = parse_sync(line)
    if pid <= 0:
        raise ConmonError(f"container {container_id}: {message.strip().splitlines()[-1] if message else pid}")
    return pid


def reopen_log(bundle: Path) -> None:
    """Tells the container's conmon to reopen its log file (after the file was rotated away)."""
    fd = os.open(bundle / "ctl", os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.write(fd, CTL_REOPEN_LOG.encode())
    finally:
        os.close(fd)

"""Thin wrapper over runc: argument lists for each verb, running them, pure parsers of its JSON.

Used by agent.runtime; every runc call goes through ``Runc(binary, root)`` so each agent keeps its
containers' state under its own ``--root``. States are read from runc's own state files, the way
``runc list`` works them out, without a runc process; the parsers of ``runc state`` and ``runc list
--format json`` output are what those readings are checked against (unit tests with captured
output, and an integration test against real runc).
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from shoal.errors import NotFound, ShoalError
from shoal.model.exec_wire import ExecResult

EXEC_OUTPUT_MAX = 1 << 20  # bytes of an exec's output kept; the rest is read and dropped


class RuncError(ShoalError):
    """runc failed; the message is its error line."""


@dataclass(frozen=True)
class RuncState:
    id: str
    pid: int
    status: str  # creating, created, running, paused, stopped
    bundle: str
    created: float  # unix seconds


def parse_time(text: str) -> float:
    """RFC 3339 with nanoseconds (runc's ``created``) → unix seconds."""
    head, _, frac = text.rstrip("Z").partition(".")
    seconds = datetime.fromisoformat(head + "+00:00").timestamp()
    return seconds + (float("0." + frac) if frac else 0.0)


def parse_state_file(obj: dict[str, Any], proc_stat: str | None, exec_fifo: bool) -> RuncState:
    """A container's status as ``runc list`` works it out: from ``<root>/<id>/state.json``, the
    init process's ``/proc/<pid>/stat`` (None when gone) and whether its exec FIFO is still there.

    The init process is the container's while it lives with the start time runc recorded (a
    reused pid has another); ``created`` until ``runc start`` consumes the FIFO. Paused is not
    told apart from running (shoal never pauses a container).
    """
    pid = int(obj.get("init_process_pid") or 0)
    alive = proc_stat is not None and _is_init(proc_stat, int(obj.get("init_process_start") or 0))
    status = ("created" if exec_fifo else "running") if alive else "stopped"
    labels = (obj.get("config") or {}).get("labels") or []
    bundle = next((lb.partition("=")[2] for lb in labels if lb.startswith("bundle=")), "")
    return RuncState(
        id=str(obj["id"]),
        pid=pid if alive else 0,
        status=status,
        bundle=bundle,
        created=parse_time(obj["created"]),
    )


def _is_init(proc_stat: str, start_time: int) -> bool:
    """Whether a ``/proc/<pid>/stat`` line is a live process started at `start_time` (clock ticks)."""
    fields = proc_stat.rpartition(")")[2].split()
    state, started = fields[0], int(fields[19])  # stat fields 3 and 22
    return started == start_time and state not in ("Z", "X", "x")


def error_line(stderr: str) -> str:
    """The message of runc's last logrus line (``time=… level=error msg="…"``)."""
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    last = lines[-1] if lines else "runc failed"
    _, found, msg = last.partition('msg="')
    return msg.rsplit('"', 1)[0] if found else last


class Runc:
    """runc with a fixed binary and state root."""

    def __init__(self, binary: str = "runc", root: Path | str = "/run/runc") -> None:
        self.binary = binary
        self.root = str(root)

    def args(self, *verb: str) -> list[str]:
        return [self.binary, "--root", self.root, *verb]

    def _run(self, argv: Sequence[str], timeout: float = 30.0) -> str:
        proc = subprocess.run(
            argv, check=False, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
        if proc.returncode != 0:
            message = error_line(proc.stderr)
            if "does not exist" in message:
                raise NotFound(f"container {argv[-1]}: {message}")
            raise RuncError(f"runc {argv[3]}: {message}")
        return proc.stdout

    def create(self, container_id: str, bundle: Path, pid_file: Path) -> None:
        """Creates without starting; stdio is /dev/null (the runtime uses conmon for real runs)."""
        self._run(self.args("create", "--bundle", str(bundle), "--pid-file", str(pid_file), container_id))

    def start(self, container_id: str) -> None:
        self._run(self.args("start", container_id))

    def start_fast(self, container_id: str) -> None:
        """``runc start`` without a process: what it does is read the container's exec FIFO
        (``<root>/<id>/exec.fifo``), which lets runc init exec the user process, then remove the FIFO.
        Saves a runc process on every start; falls back to ``runc start`` when the FIFO is not there."""
        fifo = Path(self.root) / container_id / "exec.fifo"
        try:
            fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            self.start(container_id)
            return
        try:
            _read_fifo(fd)
        finally:
            os.close(fd)
        fifo.unlink(missing_ok=True)

    def kill(self, container_id: str, signal: str = "TERM", all_processes: bool = False) -> None:
        flags = ["--all"] if all_processes else []
        self._run(self.args("kill", *flags, container_id, signal))

    def delete(self, container_id: str, force: bool = False) -> None:
        self._run(self.args("delete", *(["--force"] if force else []), container_id))

    def state(self, container_id: str) -> RuncState:
        """As ``runc state`` says, from runc's state file; raises NotFound when runc does not
        know the container."""
        found = self._read_state(Path(self.root) / container_id)
        if found is None:
            raise NotFound(f"container {container_id}: container does not exist")
        return found

    def list(self) -> list[RuncState]:
        """Every container under the root, read from runc's state files as ``runc list`` would
        (no runc process: the agent lists its containers on every supervisor tick)."""
        root = Path(self.root)
        if not root.is_dir():
            return []
        found = (self._read_state(directory) for directory in sorted(root.iterdir()))
        return [state for state in found if state is not None]

    @staticmethod
    def _read_state(directory: Path) -> RuncState | None:
        """None for what is no container (yet): no state file, or one runc is still writing."""
        try:
            obj = json.loads((directory / "state.json").read_text())
            pid = int(obj.get("init_process_pid") or 0)
        except (OSError, ValueError, AttributeError):
            return None
        try:
            proc_stat: str | None = Path(f"/proc/{pid}/stat").read_text() if pid else None
        except OSError:
            proc_stat = None
        return parse_state_file(obj, proc_stat, (directory / "exec.fifo").exists())

    def exec(
        self, container_id: str, argv: Sequence[str], timeout: float = 30.0, max_output: int = EXEC_OUTPUT_MAX
    ) -> ExecResult:
        """Runs argv in the container: its exit code and its output (stdout and stderr as they come,
        the first `max_output` bytes of them). On timeout the process is killed: exit code 124."""
        with tempfile.TemporaryDirectory(prefix="shoal-exec-") as tmp:
            pid_file = Path(tmp) / "pid"
            cmd = self.args("exec", "--pid-file", str(pid_file), container_id, *argv)
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
            deadline = time.monotonic() + timeout
            output, finished = _read_capped(proc, deadline, max_output)
            try:
                code = proc.wait(timeout=max(deadline - time.monotonic(), 0.1)) if finished else None
            except subprocess.TimeoutExpired:
                code = None
            if code is None:
                _kill_pid_file(pid_file)
                proc.kill()
                proc.wait()
        return ExecResult(exit_code=124 if code is None else code, output=output.decode(errors="replace"))


def _read_capped(proc: subprocess.Popen[bytes], deadline: float, limit: int) -> tuple[bytes, bool]:
    """The first `limit` bytes of the process's output (the rest read and dropped, so a chatty
    process never blocks on a full pipe), and whether it ended before `deadline`."""
    assert proc.stdout is not None
    kept = bytearray()
    with proc.stdout, selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if not selector.select(left):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                return bytes(kept), True
            kept += chunk[: max(limit - len(kept), 0)]
    return bytes(kept), False


def _kill_pid_file(pid_file: Path) -> None:
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
        os.kill(int(pid_file.read_text()), signal.SIGKILL)


def _read_fifo(fd: int, timeout: float = 10.0) -> None:
    """Waits for runc init's byte; EOF means no writer yet (or init died: then it times out)."""
    os.set_blocking(fd, True)
    deadline = time.monotonic() + timeout
    while not os.read(fd, 1):
        if time.monotonic() > deadline:
            raise RuncError("runc start: the container's init never became ready")
        time.sleep(0.001)

"""Container logs: the k8s-file lines conmon writes, size-bounded rotation, and a reader.

conmon appends ``<RFC 3339 nanos> <stdout|stderr> <F|P> <text>`` per line to ``<id>.log``. The
runtime's supervisor tick calls ``rotate`` (``.log`` → ``.log.1`` → … ``.log.N``, the oldest
dropped) and then tells conmon to reopen. ``read_lines`` yields lines since a time, the last N,
and follows new ones across rotations; it backs the agent's logs endpoint.
"""

from __future__ import annotations

import itertools
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True)
class LogLine:
    stamp: str  # as conmon wrote it (RFC 3339, nanoseconds)
    time: float  # unix seconds
    stream: str  # stdout or stderr
    text: str

    def render(self) -> str:
        """The agent endpoint's form: ``<rfc3339 time> <stream> <line>``."""
        return f"{self.stamp} {self.stream} {self.text}"


def parse_stamp(stamp: str) -> float:
    """``2026-11-25T21:00:10.866018739+00:00`` → unix seconds (nanoseconds kept as a fraction)."""
    head, dot, rest = stamp.partition(".")
    if not dot:
        return datetime.fromisoformat(stamp).timestamp()
    digits = rest[: len(rest) - len(rest.lstrip("0123456789"))]
    zone = rest[len(digits) :]
    return datetime.fromisoformat(head + zone).timestamp() + float("0." + digits)


def parse_records(lines: Iterator[str]) -> Iterator[LogLine]:
    """k8s-file records → whole lines: partial ``P`` records join the next one of their stream,
    and a partial line left at the end is yielded as it is."""
    pending: dict[str, tuple[str, str]] = {}
    for raw in lines:
        parts = raw.rstrip("\n").split(" ", 3)
        if len(parts) < 3:
            continue
        stamp, stream, tag = parts[0], parts[1], parts[2]
        text = pending.pop(stream, ("", ""))[1] + (parts[3] if len(parts) > 3 else "")
        if tag == "P":
            pending[stream] = (stamp, text)
            continue
        yield LogLine(stamp, parse_stamp(stamp), stream, text)
    for stream, (stamp, text) in pending.items():
        yield LogLine(stamp, parse_stamp(stamp), stream, text)


def log_files(path: Path, keep: int) -> list[Path]:
    """The rotated files, oldest first, then the live one (those that exist)."""
    rotated = [path.with_name(f"{path.name}.{i}") for i in range(keep, 0, -1)]
    return [p for p in [*rotated, path] if p.exists()]


def rotate(path: Path, max_bytes: int, keep: int) -> bool:
    """Shifts ``path`` to ``path.1`` (and older ones up, dropping past ``keep``) when it is too big."""
    try:
        if path.stat().st_size <= max_bytes:
            return False
    except FileNotFoundError:
        return False
    for i in range(keep, 0, -1):
        older = path.with_name(f"{path.name}.{i}")
        newer = path if i == 1 else path.with_name(f"{path.name}.{i - 1}")
        if i == keep:
            older.unlink(missing_ok=True)
        if newer.exists():
            newer.rename(older)
    return True


def _file_lines(path: Path) -> Iterator[str]:
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            yield from f
    except FileNotFoundError:
        return


def read_lines(path: Path, keep: int, since: float | None = None, tail: int | None = None) -> list[LogLine]:
    """The stored lines (rotated files included), those at or after ``since``, the last ``tail``."""
    records = (raw for p in log_files(path, keep) for raw in _file_lines(p))
    return _select(parse_records(records), since, tail)


def _select(lines: Iterator[LogLine], since: float | None, tail: int | None) -> list[LogLine]:
    picked = (ln for ln in lines if since is None or ln.time >= since)
    if tail is None:
        return list(picked)
    return list(deque(picked, maxlen=tail)) if tail > 0 else []


def follow(
    path: Path,
    keep: int,
    *,
    since: float | None,
    tail: int | None,
    stop: Callable[[], bool],
    poll_s: float = 0.2,
    idle_s: float | None = None,
) -> Iterator[LogLine | None]:
    """Stored lines, then new ones as they come (across rotations) until ``stop()`` is true;
    with ``idle_s``, None after each ``idle_s`` without a line (the endpoint's keepalive, which
    is how it learns that its reader left).

    The live file is opened first and its stored lines are read through the same handle, so a
    line written while the rotated files are read is neither lost nor given twice.
    """
    with _Tail(path) as tailer:
        live = tailer.read_new()
        rotated = (raw for p in log_files(path, keep) if p != path for raw in _file_lines(p))
        yield from _select(parse_records(itertools.chain(rotated, live)), since, tail)
        quiet_since = time.monotonic()
        while True:
            lines = tailer.read_new()
            yield from parse_records(iter(lines))
            if lines:
                quiet_since = time.monotonic()
            elif stop():
                return
            elif idle_s is not None and time.monotonic() - quiet_since >= idle_s:
                quiet_since = time.monotonic()
                yield None
            else:
                time.sleep(poll_s)


class _Tail:
    """Reads a file and then what is appended to it, reopening it when rotation replaced it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = path.open(encoding="utf-8", errors="replace")  # from its start
        self.buffer = ""

    def __enter__(self) -> _Tail:
        return self

    def __exit__(self, *exc: object) -> None:
        self.file.close()

    def read_new(self) -> list[str]:
        data = self.buffer + self.file.read()
        if not data and self._replaced():
            self.file.close()
            self.file = self.path.open(encoding="utf-8", errors="replace")
            data = self.file.read()
        lines = data.split("\n")
        self.buffer = lines.pop()
        return [ln + "\n" for ln in lines]

    def _replaced(self) -> bool:
        try:
            return os.stat(self.path).st_ino != os.fstat(self.file.fileno()).st_ino
        except FileNotFoundError:
            return False

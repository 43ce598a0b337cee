"""What one layer may unpack to, and the deadline of a pull: the guards around ``extract``.

The store hands ``extract_layer`` an ``UnpackLimits`` (from the agent config) and the blob's
compressed size; a ``Budget`` counts each entry before it is written, so a layer that would pass a
limit is refused before its first byte past it lands. Sizes count by the apparent size of files
(a sparse file by its length, not by the few bytes the tar stores), because that is what a
careless copy, a backup or the container itself may one day materialise. ``LimitedStream`` caps the
decompressed tar stream itself, so a huge PAX header or padding cannot be a memory or time bomb.
A ``Deadline`` bounds a whole pull: waits for the store's lock, skopeo and unpacking check it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import IO

from shoal.agent.images.errors import ImageError

GIB = 1 << 30
HEADER_ALLOWANCE = 2048  # tar stream bytes per entry beyond its data: header, PAX records, padding


@dataclass(frozen=True)
class UnpackLimits:
    """Per-layer limits (agent config ``unpack_max_bytes``, ``_entries``, ``_ratio``).

    Defaults fit real images with room to spare: the largest common layers (CUDA, ML runtimes)
    are a few GiB unpacked and a few hundred thousand entries; gzip itself cannot exceed ~1030:1,
    so only zeros or a crafted layer reach the ratio. Below ``ratio_floor`` bytes no ratio
    applies: a tiny layer is mostly tar headers and padding.
    """

    max_bytes: int = 20 * GIB
    max_entries: int = 1_000_000
    max_ratio: int = 1000
    ratio_floor: int = 1 << 20

    def ratio_cap(self, compressed: int) -> int:
        """The most bytes a layer of ``compressed`` bytes may unpack to by its ratio."""
        return max(self.max_ratio * max(compressed, 0), self.ratio_floor)


class LimitExceeded(Exception):
    """A layer passed one of its limits; the message names the limit."""


def human(size: int) -> str:
    """A byte count for people: 1 TiB, 20 GiB, 512 KiB."""
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift:
            return f"{size / (1 << shift):.4g} {unit}"
    return f"{size} B"


@dataclass
class Budget:
    """Counts a layer's entries and apparent bytes against its limits as they are read."""

    limits: UnpackLimits
    compressed: int
    entries: int = 0
    size: int = 0

    def add(self, apparent_size: int) -> None:
        """Count one more entry of ``apparent_size`` bytes; ``LimitExceeded`` past a limit."""
        self.entries += 1
        self.size += max(apparent_size, 0)
        limits = self.limits
        if self.entries > limits.max_entries:
            raise LimitExceeded(
                f"has more than {limits.max_entries} entries (agent config unpack_max_entries)"
            )
        if self.size > limits.max_bytes:
            raise LimitExceeded(
                f"unpacks to more than {human(limits.max_bytes)} (agent config unpack_max_bytes)"
            )
        if self.size > limits.ratio_cap(self.compressed):
            raise LimitExceeded(
                f"unpacks to more than {limits.max_ratio} times its compressed size of "
                f"{human(self.compressed)} (agent config unpack_max_ratio)"
            )


class Deadline:
    """A point in (monotonic) time after which a pull gives up; ``None`` seconds: never."""

    def __init__(self, seconds: float | None, what: str = "pull") -> None:
        self.seconds = seconds
        self.what = what
        self.at = None if seconds is None else time.monotonic() + seconds

    def remaining(self) -> float | None:
        """Seconds left (never below 0), or None without a deadline."""
        return None if self.at is None else max(self.at - time.monotonic(), 0.0)

    def check(self) -> None:
        """``ImageError`` once the deadline has passed."""
        if self.at is not None and time.monotonic() >= self.at:
            raise ImageError(
                f"{self.what}: did not finish within {self.seconds:g}s (agent config pull_timeout_s)"
            )


class LimitedStream:
    """A read-only stream that stops a layer whose decompressed tar passes ``cap`` bytes,
    and checks the pull's deadline as it goes."""

    def __init__(self, raw: IO[bytes], cap: int, deadline: Deadline | None = None) -> None:
        self.raw = raw
        self.cap = cap
        self.deadline = deadline
        self.read_so_far = 0

    def read(self, size: int = -1) -> bytes:
        """Read like ``raw.read``; ``LimitExceeded`` once more than ``cap`` bytes came out."""
        if self.deadline is not None:
            self.deadline.check()
        want = self.cap + 1 - self.read_so_far if size < 0 else min(size, self.cap + 1 - self.read_so_far)
        data = self.raw.read(max(want, 1))
        self.read_so_far += len(data)
        if self.read_so_far > self.cap:
            raise LimitExceeded(
                f"its tar stream passes {human(self.cap)} (agent config unpack_max_bytes, unpack_max_ratio)"
            )
        return data


def stream_cap(limits: UnpackLimits, compressed: int) -> int:
    """The most decompressed tar bytes a layer may have: its data plus headers within the size
    and entry limits, and (headers too) within its ratio."""
    by_size = limits.max_bytes + HEADER_ALLOWANCE * limits.max_entries
    return min(by_size, limits.ratio_cap(compressed)) + (1 << 20)

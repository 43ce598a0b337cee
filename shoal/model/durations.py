"""Durations and sizes as Compose writes them (`1m30s`, `500ms`; `512m`, `1g`), normalised.

Pure helpers under `shoal.model.compose`: a duration becomes seconds (float), a size bytes (int).
They raise ValueError with a short message; the Compose parser adds the key path and line.
"""

from __future__ import annotations

import math
import re

from shoal.model.limits import MAX_BYTES, MAX_DURATION_S

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgtp]?)(b|ib)?", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def brief(value: object) -> str:
    """A value for an error message: scalars as written, anything else by its kind (never the whole
    thing: a YAML alias bomb would make its repr enormous)."""
    if isinstance(value, str):
        return f'"{value[:80]}"'
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    return f"(a {'list' if isinstance(value, list) else 'mapping' if isinstance(value, dict) else 'value'})"


def parse_duration(value: object) -> float:
    """`1m30s` → 90.0, `500ms` → 0.5, `0` → 0.0; a bare number other than 0 is refused (unit missing),
    and so is one longer than `MAX_DURATION_S`."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"invalid duration {brief(value)}")
    if isinstance(value, int | float):
        if value == 0:
            return 0.0
        raise ValueError(f'invalid duration {value} (write it with a unit: "{value}s")')
    seconds = _parse_duration_text(value.strip())
    if not math.isfinite(seconds) or seconds > MAX_DURATION_S:
        days = MAX_DURATION_S / 86400
        raise ValueError(f"duration {brief(value)} is longer than the maximum {days:g} days")
    return seconds


def _parse_duration_text(text: str) -> float:
    if text == "0":
        return 0.0
    if not text or _DURATION_PART.sub("", text) != "":
        raise ValueError(f'invalid duration "{text}"')
    return sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))


def parse_size(value: object) -> int:
    """`512m` → 536870912, `1g`, `100k`, `1.5GiB`, a plain integer is bytes (binary units, as Docker);
    at most `MAX_BYTES`."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"invalid size {brief(value)}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"invalid size {brief(value)}")
        return _bounded_size(value, value)
    match = _SIZE.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"invalid size {brief(value)}")
    number, unit, _ = match.groups()
    return _bounded_size(float(number) * _SIZE_UNITS[unit.lower()], value)


def _bounded_size(size: float, written: object) -> int:
    if not size <= MAX_BYTES:  # also false for nan
        raise ValueError(f"size {brief(written)} is more than the maximum {MAX_BYTES >> 50} PiB")
    return int(size)

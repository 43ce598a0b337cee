"""Durations and sizes as Compose writes them."""

from __future__ import annotations

import pytest

from shoal.model.constraints import parse_constraint
from shoal.model.durations import parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10s", 10.0), ("1m30s", 90.0), ("500ms", 0.5), ("1h", 3600.0), ("1.5s", 1.5), ("0", 0.0), (0, 0.0),
     ("2h45m", 9900.0), ("100us", 1e-4)],
)  # fmt: skip
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["10", 10, "s", "10x", "", "1m 30s", True, None, "-1s"])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [("512m", 512 << 20), ("1g", 1 << 30), ("100k", 100 << 10), ("1024", 1024), (2048, 2048),
     ("1GB", 1 << 30), ("1.5GiB", 3 << 29), ("64M", 64 << 20), ("10b", 10)],
)  # fmt: skip
def test_sizes(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["12zz", "m", "", -1, 1.5, True, "1 g b"])
def test_bad_sizes(text: object) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(text)


def test_constraints() -> None:
    c = parse_constraint("node.role != manager")
    assert (c.key, c.op, c.value, str(c)) == ("node.role", "!=", "server", "node.role!=server")
    assert c.matches("a", "", "worker", {})
    assert not c.matches("a", "", "server", {})
    zone = parse_constraint("node.labels.zone==eu")
    assert zone.matches("a", "", "worker", {"zone": "eu"})
    assert not zone.matches("a", "", "worker", {})
    assert parse_constraint("node.labels.zone!=eu").matches("a", "", "worker", {})
    assert parse_constraint("node.hostname==b").matches("b", "", "worker", {})
    assert parse_constraint("node.id==x1").matches("b", "x1", "worker", {})
    assert parse_constraint("node.id==b").matches("b", "", "worker", {})
    for bad in ("node.platform.os==linux", "engine.labels.a==b", "node.role==boss", "node.hostname", "x==y"):
        with pytest.raises(ValueError):
            parse_constraint(bad)

"""Which reported replica changes are events (store.tasks.news), and in whose words."""

from __future__ import annotations

import pytest

from shoal.control.store.tasks import news

WEB = "web replica 1 on n1"


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (("pending", "none", ""), ("pulling", "none", ""), None),
        (("pulling", "none", ""), ("running", "none", ""), ("replica.running", f"{WEB} is running")),
        (("running", "none", ""), ("running", "starting", ""), None),
        (("running", "starting", ""), ("running", "healthy", ""), ("replica.healthy", f"{WEB} is healthy")),
        (("running", "healthy", ""), ("running", "healthy", ""), None),
        (("pulling", "none", ""), ("running", "healthy", ""), ("replica.running", f"{WEB} is running")),
        (
            ("pulling", "none", ""),
            ("failed", "none", "pull r:5000/web:1: manifest unknown"),
            ("replica.failed", f"{WEB} failed: pull r:5000/web:1: manifest unknown"),
        ),
        (("failed", "none", "layer refused"), ("failed", "none", "layer refused"), None),
        (
            ("failed", "none", "layer refused"),
            ("failed", "none", "start: exec /app: no such file"),
            ("replica.failed", f"{WEB} failed: start: exec /app: no such file"),
        ),
        (
            ("running", "healthy", ""),
            ("running", "unhealthy", "health check: exit 1: connection refused"),
            ("replica.unhealthy", f"{WEB} is unhealthy: health check: exit 1: connection refused"),
        ),
        (("running", "unhealthy", "x"), ("running", "unhealthy", "y"), None),
        (
            ("running", "none", ""),
            ("exited", "none", "exited with code 3"),
            ("replica.exited", f"{WEB} exited with code 3"),
        ),
        (("failed", "none", ""), ("failed", "none", "?"), ("replica.failed", f"{WEB} failed: ?")),
        (
            ("pulling", "none", ""),
            ("failed", "none", ""),
            ("replica.failed", f"{WEB} failed: no reason given"),
        ),
    ],
)
def test_news(before: tuple[str, str, str], after: tuple[str, str, str], expected: object) -> None:
    assert news(WEB, before, after) == expected

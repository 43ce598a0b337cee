"""The controller's wait for work: a serving refresh held back by the DNS/ingress interval is made
as the interval ends, not at the next tick after it (a deploy waits for it: issue 15)."""

from __future__ import annotations

from shoal.control.controller import wait_s


def test_without_a_held_back_refresh_the_wait_is_the_interval() -> None:
    assert wait_s(0.5, 1.0, last_serving=10.0, pending=False, now=10.2) == 0.5


def test_a_held_back_refresh_ends_the_wait_as_its_interval_ends() -> None:
    assert round(wait_s(0.5, 1.0, last_serving=10.0, pending=True, now=10.7), 6) == 0.3
    assert wait_s(0.5, 1.0, last_serving=10.0, pending=True, now=10.1) == 0.5


def test_a_refresh_already_due_waits_next_to_nothing() -> None:
    assert wait_s(0.5, 1.0, last_serving=10.0, pending=True, now=12.0) == 0.001

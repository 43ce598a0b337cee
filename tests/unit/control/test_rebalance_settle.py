"""The settle delay of automatic rebalancing: a spread must stay uneven for the whole delay."""

from __future__ import annotations

from shoal.control.rebalancing import Settle


def test_moves_only_after_the_spread_stayed_uneven_for_the_delay() -> None:
    settle = Settle(delay_s=10.0)
    assert not settle.due("web", uneven=True, now=100.0)
    assert not settle.due("web", uneven=True, now=109.0)
    assert settle.due("web", uneven=True, now=110.0)


def test_a_flapping_node_restarts_the_delay() -> None:
    settle = Settle(delay_s=10.0)
    settle.due("web", uneven=True, now=100.0)
    assert not settle.due("web", uneven=False, now=105.0)  # the node went away again: even
    assert not settle.due("web", uneven=True, now=108.0)
    assert not settle.due("web", uneven=True, now=117.0)
    assert settle.due("web", uneven=True, now=118.0)


def test_a_failed_move_waits_a_whole_delay_again() -> None:
    settle = Settle(delay_s=10.0)
    settle.due("web", uneven=True, now=100.0)
    assert settle.due("web", uneven=True, now=111.0)
    settle.reset("web")
    assert not settle.due("web", uneven=True, now=112.0)

"""The failure detector's judgement: heartbeat ages in, nodes declared lost or self-suspicion out."""

from __future__ import annotations

import pytest

from shoal.control.scheduler.liveness import Episode, Heard, judge

GRACE = 5.0


def cluster(*ages: float | None, down: tuple[int, ...] = (), own: int | None = 0) -> list[Heard]:
    """Nodes n1.. with these heartbeat ages; `own` is the index of the server machine's node."""
    return [Heard(f"n{i + 1}", age, i in down, i == own) for i, age in enumerate(ages)]


@pytest.mark.parametrize(
    ("nodes", "lost", "suspect"),
    [
        (cluster(0.5, 0.8, 1.0), (), False),  # everyone heard from
        (cluster(0.5, 9.0, 1.0), ("n2",), False),  # one worker of three really lost
        (cluster(0.5, 9.0, 9.0), (), True),  # every node but the server's own: the server's link
        (cluster(0.5, 9.0, 9.0, 9.0), (), True),  # three of four at once
        (cluster(9.0, 9.0, 9.0, 9.0), (), True),  # all of them, its own too: the server was paused
        (cluster(0.5, 9.0, 9.0, 0.3, 0.2), ("n2", "n3"), False),  # two of five: a minority, both lost
        (cluster(0.5, 0.5, 9.0, 9.0), ("n3", "n4"), False),  # half, not more, and n2 heard: both lost
        (cluster(0.5, 9.0), (), True),  # two nodes: losing the only other one could be either
        (cluster(0.5, 9.0, 0.1, own=None), ("n2",), False),  # no own node known: majority rule only
        (cluster(9.0, 9.0, 0.1, own=None), (), True),
        (cluster(0.5, 30.0, 9.0, 0.4, down=(1,)), ("n3",), False),  # n2 already down: n3 alone now
        (cluster(0.5, 30.0, 9.0, 9.0, down=(1,)), (), True),  # n2 down, then every other but own
        (cluster(0.5, None, 0.2), ("n2",), False),  # never heard from counts as silent
        (cluster(0.5, 5.0, 0.2), (), False),  # exactly the grace: not yet
        (cluster(0.5, 5.3, 4.6, 4.4), (), True),  # a cut: the first one crossed, the others follow
        (cluster(0.5, 5.3, 1.0, 0.9), ("n2",), False),  # the others still heartbeat
        (cluster(0.5, 5.3, 4.6, 0.9), ("n2",), False),  # two of four went quiet: not most
        (cluster(0.5, 4.6, 4.4), (), False),  # nobody past the grace yet: no judgement, no episode
    ],
)
def test_judgement_table(nodes: list[Heard], lost: tuple[str, ...], suspect: bool) -> None:
    verdict = judge(nodes, grace_s=GRACE, now=100.0, episode=None)
    assert verdict.down == lost
    assert (verdict.episode is not None) == suspect
    assert verdict.began == suspect
    assert bool(verdict.reason) == suspect


def test_suspicion_names_the_silent_nodes() -> None:
    verdict = judge(cluster(0.5, 9.0, 9.0), grace_s=GRACE, now=100.0, episode=None)
    assert "every node but its own" in verdict.reason
    assert "n2, n3" in verdict.reason


def test_a_stalled_controller_suspects_itself_even_when_a_few_nodes_were_heard_first() -> None:
    # after a pause, n1 and n2's queued heartbeats landed before the tick; n3 and n4 look lost
    nodes = cluster(0.1, 0.1, 12.0, 12.0)
    assert judge(nodes, grace_s=GRACE, now=100.0, episode=None).down == ("n3", "n4")
    verdict = judge(nodes, grace_s=GRACE, now=100.0, episode=None, stalled_s=12.0)
    assert verdict.down == () and verdict.began
    assert "did not run for 12.0s" in verdict.reason


def test_a_short_stall_is_not_suspicion() -> None:
    verdict = judge(cluster(0.1, 0.1, 0.2), grace_s=GRACE, now=100.0, episode=None, stalled_s=1.0)
    assert verdict.episode is None


def test_an_episode_begins_once_and_lasts_while_the_evidence_does() -> None:
    cut = cluster(0.5, 9.0, 9.0)
    first = judge(cut, grace_s=GRACE, now=100.0, episode=None)
    again = judge(cut, grace_s=GRACE, now=105.0, episode=first.episode)
    assert first.began and not again.began  # one event per episode
    assert again.episode == Episode(since=100.0, hold_until=115.0)
    assert again.down == ()


def test_nodes_back_inside_the_hold_keep_their_replicas_and_a_straggler_is_judged_after_it() -> None:
    episode = Episode(since=100.0, hold_until=122.0)
    # the link is back: n2 reconnected, n3's agent is still inside its back-off
    back = cluster(0.5, 0.3, 17.0)
    held = judge(back, grace_s=GRACE, now=113.0, episode=episode)
    assert held.down == () and held.episode == episode and not held.began
    after = judge(back, grace_s=GRACE, now=122.5, episode=held.episode)
    assert after.down == ("n3",) and after.episode is None


def test_everyone_back_ends_the_episode_after_the_hold() -> None:
    episode = Episode(since=100.0, hold_until=110.0)
    assert judge(cluster(0.5, 0.3, 0.2), grace_s=GRACE, now=111.0, episode=episode).episode is None


def test_hold_is_configurable() -> None:
    verdict = judge(cluster(0.5, 9.0, 9.0), grace_s=GRACE, now=100.0, episode=None, hold_s=3.0)
    assert verdict.episode == Episode(since=100.0, hold_until=103.0)

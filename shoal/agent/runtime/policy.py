"""Restart policies (Compose/Docker: no, on-failure[:N], always, unless-stopped) with back-off.

Pure: the runtime's supervisor tick gives ``decide`` the container's recorded exits, its policy,
whether a person stopped it, whether this is the agent's first tick, and the time; it answers
restart now, restart at T, or give up. Back-off doubles from ``delay_s`` to ``max_delay_s`` per
consecutive short run; a run of at least ``window_s`` resets it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from shoal.model.container import RestartPolicy


@dataclass(frozen=True)
class Exit:
    code: int
    started_at: float
    finished_at: float


@dataclass(frozen=True)
class Decision:
    action: Literal["restart", "wait", "give_up"]
    at: float  # when to restart (restart: now; wait: later); 0 for give_up
    reason: str = ""


def decide(
    policy: RestartPolicy,
    exits: Sequence[Exit],
    now: float,
    stopped_by_user: bool = False,
    boot: bool = False,
) -> Decision:
    """What to do about a container whose last run ended (``exits[-1]``)."""
    refusal = _refusal(policy, exits, stopped_by_user, boot)
    if refusal:
        return Decision("give_up", 0.0, refusal)
    due = exits[-1].finished_at + backoff(policy, exits)
    if now >= due:
        return Decision("restart", now, f"restart {len(exits)}")
    return Decision("wait", due, f"back-off until {due:.3f}")


def _refusal(policy: RestartPolicy, exits: Sequence[Exit], stopped_by_user: bool, boot: bool) -> str:
    """Why the policy does not restart, or "" when it does."""
    if not exits:
        return "never ran"
    if policy.name == "no":
        return "restart policy no"
    if stopped_by_user and not (policy.name == "always" and boot):
        return "stopped by a person"
    if policy.name == "on-failure":
        if exits[-1].code == 0:
            return "exited 0 (on-failure)"
        if policy.max_retries and len(exits) > policy.max_retries:
            return f"gave up after {policy.max_retries} restarts"
    return ""


def backoff(policy: RestartPolicy, exits: Sequence[Exit]) -> float:
    """delay_s · 2^(n-1), at most max_delay_s, n = trailing runs shorter than window_s (0 → none)."""
    short = 0
    for run in reversed(exits):
        if run.finished_at - run.started_at >= policy.window_s:
            break
        short += 1
    if short == 0:
        return 0.0
    return float(min(policy.delay_s * 2 ** (short - 1), policy.max_delay_s))

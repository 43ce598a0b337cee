"""The failure detector's judgement: which silent nodes are lost, and when the server doubts itself.

Pure. Each controller tick passes every node's heartbeat age (from PostgreSQL's clock) and how
long the controller itself went without running. A node is declared lost only on evidence that
the node, not the server's own view, is gone:
- when more than half of the nodes not yet down fall silent at once, or every one of them but the
  server machine's own node, the likelier story is that the server lost the network (its link was
  cut, its process paused): it suspects itself and marks none down;
- when the controller itself did not run for a while (the process was paused or starved), every
  age it reads is stale for the same reason;
- such an episode of self-suspicion lasts while the evidence does, and `hold_s` after it, so that
  agents in their back-off reconnect before anyone is judged; a node silent past that is lost.
The controller emits one event when an episode begins (`Verdict.began`).
"At once" has a width: heartbeats come every second or so, so the nodes a cut silenced cross the
grace up to a heartbeat apart. When the first one crosses it, every node silent for more than
`QUIET` of the grace counts as lost with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

QUIET = 0.5  # of the grace: silent this long (a few heartbeats missed) counts as "at once"


@dataclass(frozen=True)
class Heard:
    """A node as the failure detector sees it."""

    name: str
    age_s: float | None  # since its last heartbeat; None: never heard from
    down: bool = False  # already declared lost
    own: bool = False  # the server machine's own node


@dataclass(frozen=True)
class Episode:
    """The server suspecting its own view: no node is marked down before `hold_until`."""

    since: float
    hold_until: float


@dataclass(frozen=True)
class Verdict:
    down: tuple[str, ...] = ()  # declare these lost
    episode: Episode | None = None  # the episode in force after this judgement, if any
    began: bool = False  # this judgement began the episode (say so once)
    reason: str = ""  # why the server suspects itself, for the event (when `began`)


def silent(nodes: Sequence[Heard], grace_s: float) -> list[Heard]:
    """Nodes not yet down whose last heartbeat is older than the grace (or never came)."""
    return [n for n in nodes if not n.down and (n.age_s is None or n.age_s > grace_s)]


def self_doubt(nodes: Sequence[Heard], quiet: Sequence[Heard]) -> str:
    """Why losing `quiet` at once points at the server itself; empty when it does not."""
    alive = [n for n in nodes if not n.down]
    if not quiet:
        return ""
    names = ", ".join(n.name for n in quiet)
    others = [n for n in alive if not n.own]
    own_heard = len(others) < len(alive) and not any(n.own for n in quiet)
    if own_heard and len(quiet) == len(others):
        return f"lost heartbeats of every node but its own at once ({names})"
    if 2 * len(quiet) > len(alive):
        return f"lost heartbeats of {len(quiet)} of {len(alive)} nodes at once ({names})"
    return ""


def judge(
    nodes: Sequence[Heard],
    *,
    grace_s: float,
    now: float,
    episode: Episode | None,
    stalled_s: float = 0.0,
    hold_s: float | None = None,
) -> Verdict:
    """Which nodes to declare lost now, and the episode of self-suspicion in force.

    `stalled_s`: how long the controller went without running before this judgement; more than
    half the grace means its own view is stale. `hold_s` (default twice the grace) is how long an
    episode outlasts its evidence.
    """
    hold = 2 * grace_s if hold_s is None else hold_s
    lost = silent(nodes, grace_s)
    reason = self_doubt(nodes, silent(nodes, grace_s * QUIET)) if lost else ""
    if not reason and stalled_s > grace_s / 2:
        reason = f"its controller did not run for {stalled_s:.1f}s"
    if reason:
        since = now if episode is None else episode.since
        return Verdict((), Episode(since, now + hold), began=episode is None, reason=reason)
    if episode is not None and now < episode.hold_until:
        return Verdict((), episode)
    return Verdict(tuple(sorted(n.name for n in lost)))

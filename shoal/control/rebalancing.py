"""The controller's rebalance stage: the scheduler's `rebalance` steps → moves started this tick.

`planning.plan` asks `steps` for every replicated service (finished moves' old tasks and failed
moves' new ones are stopped whatever else happens); the controller then calls `begin`, which
starts the next move of each service that may move now: one `shoal service rebalance` asked for
(a `rebalances` row in state running), or one deployed with `x-shoal: {rebalance: auto}` that has
been uneven for the settle delay (so a flapping node causes no churn). Each move is a new task of
the same replica on the target node, added to the plan's starts; the row and the events say so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shoal.control.scheduler import Move, RebalanceStep, Snapshot
from shoal.control.scheduler.rebalance import rebalance_all
from shoal.control.store import events, rebalances
from shoal.control.store.db import Conn

if TYPE_CHECKING:
    from shoal.control.planning import ControllerPlan


def steps(snapshot: Snapshot) -> dict[str, RebalanceStep]:
    """The rebalance step of every replicated service in the snapshot."""
    return rebalance_all(snapshot)


@dataclass
class Settle:
    """How long each auto-rebalanced service has been uneven (the leading controller's memory)."""

    delay_s: float
    since: dict[str, float] = field(default_factory=dict)

    def due(self, service: str, uneven: bool, now: float) -> bool:
        """Whether the service has been uneven for the whole delay (and still is)."""
        if not uneven:
            self.since.pop(service, None)
            return False
        return now - self.since.setdefault(service, now) >= self.delay_s

    def reset(self, service: str) -> None:
        self.since.pop(service, None)


def begin(conn: Conn, plan: ControllerPlan, settle: Settle, now: float | None = None) -> None:
    """Start this tick's moves (added to `plan.start`) and record requests' progress."""
    when = time.monotonic() if now is None else now
    requested = rebalances.running(conn)
    for name in sorted(requested - plan.rebalance.keys()):  # global now, or waiting on depends_on
        rebalances.finish(conn, name, "done", "nothing to move")
    for name, step in sorted(plan.rebalance.items()):
        if name in plan.rebalance_busy:
            continue
        asked = name in requested
        if step.failed:
            _failed(conn, name, step.failed, asked, settle)
            continue
        auto = name in plan.rebalance_auto and settle.due(name, bool(step.moves), when)
        if (asked or auto) and step.moves and not step.waiting:
            _start(conn, plan, step.moves[0], asked)
        elif asked:
            _progress(conn, name, step)


def _start(conn: Conn, plan: ControllerPlan, move: Move, asked: bool) -> None:
    plan.start.append((move.service, move.replica, plan.revisions[move.service], move.target))
    message = f"moving replica {move.replica} from {move.source} to {move.target}"
    if asked:
        record = {"replica": move.replica, "from": move.source, "to": move.target}
        rebalances.add_move(conn, move.service, record, message)
    events.emit(conn, "rebalance.move", move.service, f"{move.service}: {message}")


def _progress(conn: Conn, name: str, step: RebalanceStep) -> None:
    if step.balanced:
        rebalances.finish(conn, name, "done", "replicas spread evenly")
        events.emit(conn, "rebalance.done", name, f"{name}: replicas spread evenly")
    elif step.moving:
        move = step.moving[0]
        rebalances.set_message(conn, name, f"waiting for replica {move.replica} to serve on {move.target}")
    elif step.waiting:
        rebalances.set_message(conn, name, f"waiting: {step.waiting}")


def _failed(conn: Conn, name: str, why: str, asked: bool, settle: Settle) -> None:
    settle.reset(name)  # an automatic rebalance tries again only after a whole settle delay
    if asked:
        rebalances.finish(conn, name, "failed", why)
    events.emit(conn, "rebalance.failed", name, f"{name}: {why}")

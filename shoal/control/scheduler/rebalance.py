"""Rebalancing, pure: a replicated service's tasks now → the moves that spread it evenly again.

After a lost node comes back, the replicas moved off it stay piled on the others (placement never
moves a running task). `rebalance(snapshot, service)` plans moves back to an even spread: from the
node with the most of the service's tasks to the one `placement.choose` would pick for a new
replica (the same constraints, spread preferences, reservations and published host ports), while
that leaves the source with at least one task more than the target. A service whose named volumes
pin it to one node has nothing to move.

A move is applied start-first, one at a time: the controller starts the replica anew on the
target (a second task of the same replica and generation); once that task is ready and served (in
every node's DNS and ingress) the old one is stopped, so the service never has fewer serving
replicas than before. If the new task fails, it is stopped and the old one keeps serving. No move
starts while one is in flight, a rollout runs, or any replica is not ready. Like
`scheduler.rollout`, it needs no memory between ticks: the in-flight move is read from the tasks.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from shoal.control.scheduler.cluster import Cluster, constraints_of, node_problem
from shoal.control.scheduler.placement import choose, eligible_nodes, spread_values
from shoal.control.scheduler.types import NodeInfo, ServicePlacement, Snapshot, TaskInfo
from shoal.control.scheduler.volumes import pin_of

FAILED_STATES = ("failed", "exited")


@dataclass(frozen=True)
class Move:
    """Start `replica` on `target`, then stop its task `task_id` on `source`."""

    service: str
    replica: int
    task_id: str
    source: str
    target: str


@dataclass
class RebalanceStep:
    """What to do for one service now."""

    service: str
    moves: list[Move] = field(default_factory=list)  # the plan from here; the first may start now
    stop: list[str] = field(default_factory=list)  # task ids: finished moves' old, failed moves' new
    moving: list[Move] = field(default_factory=list)  # moves in flight (their new task not ready)
    waiting: str = ""  # why no move may start now ("" when the first of `moves` may)
    failed: str = ""  # a move's new task failed (it is in `stop`)

    @property
    def balanced(self) -> bool:
        """Nothing to move and nothing moving."""
        return not self.moves and not self.moving


def ready(task: TaskInfo) -> bool:
    return task.state == "running" and task.health in ("none", "healthy")


def broken(task: TaskInfo) -> bool:
    return task.state in FAILED_STATES or task.health == "unhealthy"


def rebalance(snapshot: Snapshot, service: str) -> RebalanceStep:
    """The moves that even out `service`, what finished or failed moves stop, and what waits."""
    return rebalance_all(snapshot, {service}).get(service, RebalanceStep(service))


def rebalance_all(snapshot: Snapshot, names: set[str] | None = None) -> dict[str, RebalanceStep]:
    """The step of every replicated service (of `names`), planned over one running view of the
    cluster: a service whose spread is surely even (the controller's usual case) costs a count."""
    cluster = Cluster(snapshot)
    by_service: dict[str, list[TaskInfo]] = defaultdict(list)
    for task in snapshot.tasks:
        by_service[task.service].append(task)
    up = {n.name for n in cluster.nodes.values() if node_problem(n) is None}
    steps = {}
    for svc in snapshot.services:
        if svc.mode == "replicated" and (names is None or svc.name in names):
            steps[svc.name] = _step(svc, by_service[svc.name], cluster, up)
    return steps


def _step(svc: ServicePlacement, mine: list[TaskInfo], cluster: Cluster, up: set[str]) -> RebalanceStep:
    step = RebalanceStep(svc.name)
    current = [t for t in mine if t.generation == svc.generation]
    if _surely_even(current, up):
        return step
    settled = _settle_moves(current, step)
    step.moves = plan_moves(cluster, svc, settled, [t for t in current if t not in settled])
    step.waiting = _gate(svc, mine, settled, step)
    return step


def _surely_even(current: list[TaskInfo], up: set[str]) -> bool:
    """No replica has two tasks, and the nodes up and active hold the tasks within one of each
    other (eligible nodes are among them, so they do too)."""
    if len({t.replica for t in current}) < len(current):
        return False
    counts = Counter(t.node for t in current if t.node in up)
    fewest = min(counts.values(), default=0) if len(counts) == len(up) else 0
    return max(counts.values(), default=0) - fewest <= 1


def _settle_moves(current: list[TaskInfo], step: RebalanceStep) -> list[TaskInfo]:
    """Resolve replicas with several tasks (a move): stop the old ones once the newest is ready
    and served, or the newest if it failed. Returns one task per replica: where it will be."""
    by_replica: dict[int, list[TaskInfo]] = defaultdict(list)
    for task in current:
        by_replica[task.replica].append(task)
    settled = []
    for replica in sorted(by_replica):
        *old, new = sorted(by_replica[replica], key=lambda t: (t.seq, t.id))
        settled.append(new)
        if not old:
            continue
        if ready(new) and new.served:
            step.stop += [t.id for t in old]
        elif broken(new):
            step.stop.append(new.id)
            step.failed = f"replica {replica} failed on {new.node} ({_what(new)}); it stays on {old[0].node}"
            settled[-1] = old[0]
        else:
            step.moving.append(Move(new.service, replica, old[0].id, old[0].node, new.node))
    return settled


def _what(task: TaskInfo) -> str:
    return "unhealthy" if task.health == "unhealthy" else task.state


def _gate(svc: ServicePlacement, mine: list[TaskInfo], settled: list[TaskInfo], step: RebalanceStep) -> str:
    """Why no move may start now, or ""."""
    if not step.moves:
        return ""
    if step.moving or step.stop:
        return "a move is in flight"
    if any(t.generation != svc.generation for t in mine):
        return "a rollout is in progress"
    missing = sorted(set(range(1, svc.replicas + 1)) - {t.replica for t in settled})
    if missing:
        return f"replica {missing[0]} is not placed"
    for task in settled:
        if not ready(task) or not task.served:
            return f"replica {task.replica} on {task.node} is not serving ({_what(task)})"
    return ""


def plan_moves(
    cluster: Cluster, svc: ServicePlacement, tasks: list[TaskInfo], superseded: Sequence[TaskInfo] = ()
) -> list[Move]:
    """Moves, one after another as if each completed, until no move evens the spread any more.
    `tasks`: the service's task per replica (a moving replica's new one); `superseded`: its other
    tasks, left out while planning. `cluster` is as it was when this returns."""
    for task in superseded:
        cluster.release(task)
    undo: list[tuple[TaskInfo, TaskInfo]] = []
    try:
        return _moves(cluster, svc, tasks, undo)
    finally:
        for before, after in reversed(undo):
            _shift(cluster, after, before.node)
        for task in superseded:
            _hold(cluster, task)


def _moves(
    cluster: Cluster, svc: ServicePlacement, tasks: list[TaskInfo], undo: list[tuple[TaskInfo, TaskInfo]]
) -> list[Move]:
    try:
        constraints = constraints_of(svc)
    except ValueError:
        return []
    pin = pin_of(svc, cluster, [t.node for t in tasks])
    if pin.node is not None or pin.conflict:
        return []  # named volumes keep every replica on their node
    nodes = eligible_nodes(cluster, constraints, None)
    placed = {t.replica: t for t in tasks if t.node in {n.name for n in nodes}}
    moves: list[Move] = []
    for _ in range(len(placed)):
        move = _next_move(svc, nodes, cluster, placed, undo)
        if move is None:
            break
        moves.append(move)
    return moves


def _hold(cluster: Cluster, task: TaskInfo) -> None:
    cluster.hold(task.service, task.node, task.reserve_cpus, task.reserve_memory_bytes, task.ports)


def _shift(cluster: Cluster, task: TaskInfo, node: str) -> TaskInfo:
    """Move a task in the running view; returns it as moved."""
    cluster.release(task)
    moved = replace(task, node=node)
    _hold(cluster, moved)
    return moved


def _next_move(
    svc: ServicePlacement,
    nodes: list[NodeInfo],
    cluster: Cluster,
    placed: dict[int, TaskInfo],
    undo: list[tuple[TaskInfo, TaskInfo]],
) -> Move | None:
    """Take the highest replica off the most crowded node; a move if `choose` puts it on a node
    holding at least two tasks fewer. Updates `cluster` and `placed` as if it were done."""
    count = cluster.per_service
    source = max(nodes, key=lambda n: (count[(svc.name, n.name)], n.name)).name
    task = max((t for t in placed.values() if t.node == source), key=lambda t: t.replica, default=None)
    if task is None:
        return None
    before = count[(svc.name, source)]
    cluster.release(task)
    target = choose(svc, nodes, cluster, spread_values(svc, nodes))
    _hold(cluster, task)
    if target is None or count[(svc.name, target)] + 2 > before:
        return None
    placed[task.replica] = _shift(cluster, task, target)
    undo.append((task, placed[task.replica]))
    return Move(svc.name, task.replica, task.id, source, target)

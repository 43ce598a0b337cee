"""What rebalancing adds to each controller tick: `rebalance_all(snapshot)` against a same-run
baseline, `schedule(snapshot)` (the placement every tick already runs), on one snapshot.

Snapshots: ``--nodes`` nodes and ``--services`` replicated services of ``--replicas``, spread evenly
("even": the usual tick, where each service costs a count), and the same after a node came back
empty with its replicas piled on the others ("returned": every service it held plans moves).
Prints one JSON line per snapshot: medians of ``--runs`` interleaved runs and their ratio.
Run: ``.venv/bin/python benchmarks/rebalance_plan.py [--nodes 20 --services 500 --replicas 10 --runs 15]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

from shoal.control.scheduler import NodeInfo, ServicePlacement, Snapshot, TaskInfo, schedule
from shoal.control.scheduler.rebalance import rebalance_all


def snapshot(nodes: int, services: int, replicas: int, returned: bool) -> Snapshot:
    """Services round-robin over the nodes; `returned`: node n0's replicas moved to the others
    (n0 is back, empty)."""
    names = [f"n{i}" for i in range(nodes)]
    tasks = []
    for s in range(services):
        for r in range(1, replicas + 1):
            where = (s * replicas + r) % nodes
            if returned and where == 0:
                where = 1 + s % (nodes - 1)
            tasks.append(TaskInfo(f"s{s}-{r}", f"s{s}", r, names[where], generation=1, seq=r))
    return Snapshot(
        nodes=tuple(NodeInfo(n, cpus=64, memory_bytes=256 << 30) for n in names),
        services=tuple(ServicePlacement(f"s{s}", replicas=replicas, generation=1) for s in range(services)),
        tasks=tuple(tasks),
    )


def seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench(snap: Snapshot, runs: int) -> dict[str, float]:
    ours: list[float] = []
    base: list[float] = []
    for _ in range(runs):
        base.append(seconds(lambda: schedule(snap)))
        ours.append(seconds(lambda: rebalance_all(snap)))
    moving = sum(bool(step.moves) for step in rebalance_all(snap).values())
    median_ours, median_base = statistics.median(ours), statistics.median(base)
    return {
        "rebalance_ms": round(median_ours * 1000, 2),
        "schedule_ms": round(median_base * 1000, 2),
        "ratio": round(median_ours / median_base, 3),
        "services_with_moves": moving,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--services", type=int, default=500)
    parser.add_argument("--replicas", type=int, default=10)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    for name, returned in (("even", False), ("returned", True)):
        snap = snapshot(args.nodes, args.services, args.replicas, returned)
        figures = bench(snap, args.runs)
        shape = {"nodes": args.nodes, "services": args.services, "replicas": args.replicas, "runs": args.runs}
        print(json.dumps({"bench": "rebalance_plan", "snapshot": name, **shape, **figures}))


if __name__ == "__main__":
    main()

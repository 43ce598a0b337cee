"""Change propagation: an API write → a node's waiting long-poll returns with the new state.

Starts a private PostgreSQL and a real `shoal server` (HTTPS), joins one node, then for each run
starts a long-poll, makes an API write that changes the node's state (a label), and times until
the poll returns. Baseline in the same run: a plain authenticated GET round trip.
Prints JSON: p50/p95 in ms over ``--runs`` (target p50 ≤ 50 ms).
Run: ``.venv/bin/python benchmarks/propagation.py [--runs 60]`` (root: PostgreSQL runs as postgres).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path
from tempfile import mkdtemp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.server_fixtures import FakeAgent, free_port, init_server, running_postgres


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)


def one_run(admin, node, name: str, i: int) -> float:
    version = node.get(f"/api/v1/nodes/{name}/state").json()["version"]
    done = threading.Event()
    got: dict = {}

    def poll() -> None:
        got.update(node.get(f"/api/v1/nodes/{name}/state", params={"since": version, "wait": 30}).json())
        got["t"] = time.perf_counter()
        done.set()

    thread = threading.Thread(target=poll)
    thread.start()
    time.sleep(0.05)
    started = time.perf_counter()
    admin.post(f"/api/v1/nodes/{name}/labels", json={"labels": {"run": str(i)}})
    done.wait(30)
    thread.join()
    assert got["version"] > version
    return float(got["t"]) - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=60)
    args = parser.parse_args()
    with running_postgres() as pg:
        tmp = Path(mkdtemp(prefix="shs-bench-"))
        srv = init_server(pg.new_database(), tmp / "srv", free_port())
        srv.start()
        try:
            agent = FakeAgent(srv, "bench1")
            with srv.client() as admin, srv.client(agent.joined["credential"], timeout=60) as node:
                baseline = []
                for _ in range(args.runs):
                    t = time.perf_counter()
                    admin.get("/api/v1/nodes/bench1")
                    baseline.append(time.perf_counter() - t)
                times = [one_run(admin, node, "bench1", i) for i in range(args.runs)]
        finally:
            srv.kill()
            shutil.rmtree(tmp, ignore_errors=True)
    print(
        json.dumps(
            {
                "benchmark": "propagation",
                "runs": args.runs,
                "p50_ms": pct(times, 0.5),
                "p95_ms": pct(times, 0.95),
                "mean_ms": round(statistics.mean(times) * 1000, 2),
                "baseline_get_p50_ms": pct(baseline, 0.5),
                "target_p50_ms": 50,
            }
        )
    )


if __name__ == "__main__":
    main()

"""Scale: 200 simulated nodes and 10,000 replicas over 500 services against a real server + database.

Simulated nodes (threads in a few processes, no containers) join, long-poll their state and report
every container running. After all have joined, 500 services of 20 replicas are stored as one deploy
(the same `deploy.store` the API calls, without Compose parsing); we time until every replica is
placed and every node has received a state listing all its replicas, and until every replica is
reported running. Server RSS (peak) from /proc. Prints JSON (targets: ≤ 10 s, ≤ 200 MB).
Run: ``.venv/bin/python benchmarks/scale.py [--nodes 200 --services 500 --replicas 20]`` (root).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from queue import Empty
from tempfile import mkdtemp
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from shoal.control import deploy
from shoal.control.revision import RevisionSpec
from shoal.control.store.db import connect
from tests.support.server_fixtures import FakeAgent, Server, free_port, init_server, running_postgres


class Reporting(FakeAgent):
    def __init__(self, server: Server, name: str, out: Any) -> None:
        super().__init__(server, name)
        self.lean = True  # the simulated nodes hold no DNS server: skip parsing 10,000 records
        self._out = out

    def report(self, state: dict[str, Any]) -> None:
        self._out.put((self.name, time.time(), len(state["containers"])))
        super().report(state)


def worker(server: Server, names: list[str], out: Any, stop: Any) -> None:
    agents = []
    for name in names:
        for attempt in range(5):
            try:
                agents.append(Reporting(server, name, out).start(poll_wait=25))
                break
            except httpx.HTTPError:
                time.sleep(attempt)
        out.put(("joined", name))
    stop.wait()
    for agent in agents:
        agent.stop()


def store_services(dsn: str, services: int, replicas: int) -> None:
    specs = {
        f"svc{i:03d}": RevisionSpec.model_validate(
            {
                "template": {"id": "", "service": f"svc{i:03d}", "image": f"registry:5000/app{i}:1"},
                "replicas": replicas,
            }
        )
        for i in range(services)
    }
    with connect(dsn, autocommit=False) as conn:
        deploy.store(conn, "bench", specs)
        conn.commit()


def placed(dsn: str) -> dict[str, int]:
    with connect(dsn) as conn:
        rows = conn.execute("SELECT node, count(*) AS n FROM tasks WHERE desired_state = 'run' GROUP BY node")
        return {r["node"]: int(r["n"]) for r in rows}


def running(dsn: str) -> int:
    with connect(dsn) as conn:
        row = conn.execute("SELECT count(*) AS n FROM tasks WHERE observed_state = 'running'").fetchone()
        return int(row["n"]) if row else 0


def rss_mb(pid: int) -> dict[str, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {k: round(int(fields[k].split()[0]) / 1024, 1) for k in ("VmRSS", "VmHWM")}


def wait_joined(out: Any, count: int, timeout: float = 300) -> None:
    joined, deadline = 0, time.time() + timeout
    while joined < count:
        if time.time() > deadline:
            raise SystemExit(f"only {joined} of {count} nodes joined within {timeout}s")
        try:
            item = out.get(timeout=1)
        except Empty:
            continue
        joined += item[0] == "joined"


def received_all(out: Any, want: dict[str, int], deadline: float) -> float:
    first: dict[str, float] = {}
    last: dict[str, int] = {}
    while len(first) < len(want) and time.time() < deadline:
        try:
            item = out.get(timeout=1)
        except Empty:
            continue
        if item[0] == "joined":
            continue
        last[item[0]] = item[2]
        if item[2] == want.get(item[0], -1) and item[0] not in first:
            first[item[0]] = item[1]
    if len(first) < len(want):
        missing = sorted(set(want) - set(first))
        print(
            json.dumps({"missing": len(missing), "sample": [(n, want[n], last.get(n)) for n in missing[:5]]})
        )
    return max(first.values()) if len(first) == len(want) else float("nan")


def run(args: argparse.Namespace, pg: Any) -> dict[str, Any]:
    tmp = Path(mkdtemp(prefix="shs-bench-"))
    srv = init_server(pg.new_database(), tmp / "srv", free_port(), "--grace", "60")
    srv.start()
    assert srv.proc is not None
    ctx = mp.get_context("fork")
    out, stop = ctx.Queue(), ctx.Event()
    names = [f"n{i:03d}" for i in range(args.nodes)]
    procs = [
        ctx.Process(target=worker, args=(srv, names[i :: args.procs], out, stop)) for i in range(args.procs)
    ]
    try:
        for p in procs:
            p.start()
        t_join = time.time()
        wait_joined(out, args.nodes)
        t_join = time.time() - t_join
        rss_before = rss_mb(srv.proc.pid)
        total = args.services * args.replicas
        t0 = time.time()
        store_services(srv.dsn, args.services, args.replicas)
        while sum((counts := placed(srv.dsn)).values()) < total and time.time() - t0 < 120:
            time.sleep(0.1)
        t_placed = time.time() - t0
        t_received = received_all(out, counts, t0 + 120) - t0
        while running(srv.dsn) < total and time.time() - t0 < 120:
            time.sleep(0.2)
        t_running = time.time() - t0
        return {
            "benchmark": "scale",
            "nodes": args.nodes,
            "services": args.services,
            "replicas": total,
            "join_all_s": round(t_join, 2),
            "placed_s": round(t_placed, 2),
            "all_nodes_received_s": round(t_received, 2),
            "all_reported_running_s": round(t_running, 2),
            "server_rss_mb_idle_with_nodes": rss_before["VmRSS"],
            "server_rss_mb": rss_mb(srv.proc.pid),
            "targets": {"all_nodes_received_s": 10, "server_rss_mb": 200},
        }
    finally:
        stop.set()
        for p in procs:
            p.join(timeout=20)
            if p.is_alive():
                p.kill()
        srv.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--services", type=int, default=500)
    parser.add_argument("--replicas", type=int, default=20)
    parser.add_argument("--procs", type=int, default=4)
    args = parser.parse_args()
    with running_postgres() as pg:
        print(json.dumps(run(args, pg)))


def _exit(signum: int, frame: object) -> None:
    raise SystemExit(1)


if __name__ == "__main__":
    threading.excepthook = lambda a: None
    signal.signal(signal.SIGTERM, _exit)
    main()

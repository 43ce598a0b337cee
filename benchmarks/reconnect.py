"""Agents reconnecting after a server restart: 200 simulated nodes against a real server + database.

The simulated nodes of `scale.py` (threads in a few processes: join, long-poll their state, report)
join a server holding 50 services of 4 replicas. The server is stopped (SIGTERM) and started again
on the same data dir and port; we time from the kill until every node's heartbeat has reached the
new server (its reconnect; the database's `last_seen`), against the same-run baseline of the
server's own restart (kill to its first healthy answer). Prints one JSON line.
Run: ``.venv/bin/python benchmarks/reconnect.py [--nodes 200 --procs 4]`` (root).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import shutil
import signal
import sys
import time
from pathlib import Path
from queue import Empty
from tempfile import mkdtemp
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import store_services, wait_joined, worker

from shoal.control.store.db import connect
from tests.support.server_fixtures import Server, free_port, init_server, running_postgres


def healthy(srv: Server) -> bool:
    try:
        return httpx.get(f"{srv.url}/api/v1/health", verify=srv.ca, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def drain(out: Any) -> None:
    while True:
        try:
            out.get_nowait()
        except Empty:
            return


def reconnected(dsn: str, after: float, count: int, timeout: float) -> list[float]:
    """Seconds after `after` (the kill) at which each node's heartbeat reached the new server."""
    deadline = time.time() + timeout
    seen: list[float] = []
    while time.time() < deadline:
        with connect(dsn) as conn:
            rows = conn.execute(
                "SELECT extract(epoch FROM last_seen) AS t FROM nodes WHERE last_seen > to_timestamp(%s)",
                (after,),
            ).fetchall()
        seen = [float(r["t"]) - after for r in rows]
        if len(seen) >= count:
            break
        time.sleep(0.1)
    return sorted(seen)


def restart(srv: Server) -> tuple[float, float]:
    """Kill and start the server again; (kill time, seconds until it answered)."""
    assert srv.proc is not None
    killed = time.time()
    srv.proc.send_signal(signal.SIGTERM)
    srv.proc.wait(timeout=30)
    srv.start(listen=srv.url.removeprefix("https://"))
    while not healthy(srv):
        time.sleep(0.05)
    return killed, time.time() - killed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--procs", type=int, default=4)
    opts = parser.parse_args()
    tmp = Path(mkdtemp(prefix="shs-bench-reconnect-"))
    ctx = mp.get_context("fork")
    out, stop = ctx.Queue(), ctx.Event()
    names = [f"n{i:03d}" for i in range(opts.nodes)]
    with running_postgres() as pg:
        srv = init_server(pg.new_database(), tmp / "srv", free_port(), "--grace", "60")
        srv.start()
        procs = [
            ctx.Process(target=worker, args=(srv, names[i :: opts.procs], out, stop))
            for i in range(opts.procs)
        ]
        try:
            for p in procs:
                p.start()
            wait_joined(out, opts.nodes)
            store_services(srv.dsn, 50, 4)
            time.sleep(3)
            drain(out)
            killed, restart_s = restart(srv)
            times = reconnected(srv.dsn, killed, opts.nodes, 120)
        finally:
            stop.set()
            for p in procs:
                p.join(timeout=30)
            srv.kill()
            shutil.rmtree(tmp, ignore_errors=True)
    print(
        json.dumps(
            {
                "benchmark": "reconnect",
                "nodes": opts.nodes,
                "reconnected": len(times),
                "all_reconnected_s": round(times[-1], 2) if len(times) == opts.nodes else None,
                "median_reconnect_s": round(times[len(times) // 2], 2) if times else None,
                "baseline_server_restart_s": round(restart_s, 2),
            }
        )
    )


if __name__ == "__main__":
    main()

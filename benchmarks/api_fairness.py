"""API under load, before and after issue 19, in one run: the old server (cheroot doing TLS on its
one selector thread) from git, then this tree's (Caddy in front, a node lane and a people lane).

For each: a private PostgreSQL database and `shoal server start` on loopback, 200 simulated nodes
(threads in a few processes, no containers) that join, long-poll their state and heartbeat every
second. Then, with all of them connected:
1. `GET /api/v1/nodes` from `--clients` threads for `--seconds`: requests/s and p50/p99;
2. a viewer token opens `--streams` event streams at once (the new server keeps its cap of 8 and
   answers 429 to the rest), and for `--seconds` every heartbeat's round trip is timed: p50, p99,
   max, and whether any node was marked down.
Prints JSON with both and their ratios. Nothing but the benchmark's own servers is contacted.
Run: ``.venv/bin/python benchmarks/api_fairness.py [--nodes 200 --baseline-ref REF]`` (root).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from queue import Empty
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.server_fixtures import FakeAgent, Server, free_port, init_server, running_postgres

ROOT = Path(__file__).resolve().parents[1]


class TimedAgent(FakeAgent):
    """A simulated node whose heartbeats report their round trip (seconds) to `out`."""

    def __init__(self, server: Server, name: str, out: Any) -> None:
        super().__init__(server, name)
        self.lean = True
        self._out = out

    def _heartbeat(self) -> None:
        while not self._stop.wait(1.0):
            started = time.perf_counter()
            try:
                self._http.post(f"/api/v1/nodes/{self.name}/status", json=self._last)
            except httpx.HTTPError:
                self._out.put(("beat", 99.0))
                continue
            self._out.put(("beat", time.perf_counter() - started))


def worker(server: Server, names: list[str], out: Any, stop: Any) -> None:
    agents = []
    for name in names:
        for attempt in range(5):
            try:
                agents.append(TimedAgent(server, name, out).start(poll_wait=25))
                break
            except httpx.HTTPError:
                time.sleep(attempt)
        out.put(("joined", 0.0))
    stop.wait()
    for agent in agents:
        agent.stop()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1) if ordered else float("nan")


def old_tree(ref: str) -> Path:
    """The tree at `ref`, unpacked from git (no worktree is made)."""
    target = Path(tempfile.mkdtemp(prefix="shs-old-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def start_server(pg: Any, tmp: Path, tree: Path) -> Server:
    """`shoal server init` and `start` of `tree`'s code: `python -m shoal` run from that tree (its
    own directory comes first on sys.path, before the installed package)."""
    here = Path.cwd()
    os.chdir(tree)
    try:
        srv = init_server(pg.new_database(), tmp / tree.name, free_port(), "--grace", "5")
        srv.start()
    finally:
        os.chdir(here)
    return srv


def wait_joined(out: Any, count: int, timeout: float = 300) -> None:
    joined, deadline = 0, time.time() + timeout
    while joined < count:
        if time.time() > deadline:
            raise SystemExit(f"only {joined} of {count} nodes joined within {timeout}s")
        try:
            kind, _ = out.get(timeout=1)
        except Empty:
            continue
        joined += kind == "joined"


def drain(out: Any) -> list[float]:
    beats = []
    while True:
        try:
            kind, value = out.get_nowait()
        except Empty:
            return beats
        if kind == "beat":
            beats.append(value)


def load_nodes(srv: Server, clients: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def run() -> None:
        mine = []
        with srv.client() as admin:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                admin.get("/api/v1/nodes").raise_for_status()
                mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=run) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {
        "requests_per_s": round(len(latencies) / seconds, 1),
        "p50_ms": pct(latencies, 0.5),
        "p99_ms": pct(latencies, 0.99),
    }


def open_stream(srv: Server, token: str) -> tuple[socket.socket | None, int]:
    host, port = srv.url.removeprefix("https://").rsplit(":", 1)
    try:
        raw = socket.create_connection((host, int(port)), timeout=3)
        sock = ssl.create_default_context(cafile=srv.ca).wrap_socket(raw, server_hostname=host)
        sock.sendall(
            f"GET /api/v1/events/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
        )
        return sock, int(sock.recv(200).split(b" ", 2)[1])
    except (OSError, IndexError, ValueError):
        return None, 0


def downs(srv: Server) -> int:
    """How many node.down events there are (of the newest 10,000)."""
    with srv.client(timeout=30) as admin:
        recent = admin.get("/api/v1/events", params={"limit": 10000}).json()
    return sum(e["kind"] == "node.down" for e in recent)


def heartbeats_under_streams(srv: Server, out: Any, streams: int, seconds: float) -> dict[str, Any]:
    with srv.client() as admin:
        token = admin.post("/api/v1/tokens", json={"role": "viewer", "name": "bench"}).json()["token"]
    down_before = downs(srv)
    with ThreadPoolExecutor(64) as pool:
        opened = list(pool.map(lambda _: open_stream(srv, token), range(streams)))
    calm = drain(out)  # the heartbeats of the seconds before (the GET load, or nothing)
    time.sleep(seconds)
    beats = drain(out)
    down = downs(srv) - down_before
    for sock, _ in opened:
        if sock is not None:
            sock.close()
    statuses = [status for _, status in opened]
    return {
        "streams_asked": streams,
        "streams_open": statuses.count(200),
        "streams_429": statuses.count(429),
        "streams_failed": streams - statuses.count(200) - statuses.count(429),
        "heartbeats": len(beats),
        "heartbeat_p50_ms": pct(beats, 0.5),
        "heartbeat_p99_ms": pct(beats, 0.99),
        "heartbeat_max_ms": pct(beats, 1.0),
        "heartbeat_p99_ms_before_streams": pct(calm, 0.99),
        "node_down_events": down,
    }


def measure(pg: Any, tmp: Path, tree: Path, args: argparse.Namespace) -> dict[str, Any]:
    srv = start_server(pg, tmp, tree)
    ctx = mp.get_context("fork")
    out, stop = ctx.Queue(), ctx.Event()
    names = [f"n{i:03d}" for i in range(args.nodes)]
    procs = [
        ctx.Process(target=worker, args=(srv, names[i :: args.procs], out, stop)) for i in range(args.procs)
    ]
    try:
        for p in procs:
            p.start()
        wait_joined(out, args.nodes)
        time.sleep(2)
        return {
            "get_nodes": load_nodes(srv, args.clients, args.seconds),
            "under_streams": heartbeats_under_streams(srv, out, args.streams, args.seconds),
        }
    finally:
        stop.set()
        for p in procs:
            p.join(timeout=20)
            if p.is_alive():
                p.kill()
        srv.kill()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--procs", type=int, default=4)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--streams", type=int, default=400)
    parser.add_argument(
        "--baseline-ref", default="", help="git ref of the old server (default: merge-base with main)"
    )
    args = parser.parse_args()
    ref = (
        args.baseline_ref
        or subprocess.run(
            ["git", "-C", str(ROOT), "merge-base", "HEAD", "main"], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    old = old_tree(ref)
    tmp = Path(tempfile.mkdtemp(prefix="shs-bench-"))
    try:
        with running_postgres() as pg:
            before = measure(pg, tmp, old, args)
            after = measure(pg, tmp, ROOT, args)
    finally:
        shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    get_before, get_after = before["get_nodes"], after["get_nodes"]
    ratio = {
        "requests_per_s": round(get_after["requests_per_s"] / get_before["requests_per_s"], 2),
        "get_nodes_p99": round(get_after["p99_ms"] / get_before["p99_ms"], 2),
    }
    report = {"benchmark": "api_fairness", "nodes": args.nodes, "baseline_ref": ref}
    print(json.dumps({**report, "before": before, "after": after, "after_over_before": ratio}))


if __name__ == "__main__":
    threading.excepthook = lambda a: None
    main()

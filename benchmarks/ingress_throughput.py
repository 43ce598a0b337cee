"""Ingress throughput: requests/s and p99 through Caddy → replica over the overlay, one run.

One replica of the sandbox's example web server on a node other than the ingress node (a NAT'd
one when there is one). From inside the ingress node (its namespaces), the same closed-loop load
(``--concurrency`` client processes, keep-alive where the server allows it, ``--seconds`` each
round) goes (a) through the ingress: HTTPS to the node's own address with the route's host,
Caddy proxying over the overlay, and (b) straight to the replica's overlay address:port over
HTTP. Rounds alternate (direct, ingress, direct, ingress, ...) so both share the machine's noise.
Prints JSON with both figures and the ratio ingress/direct (target ≥ 0.5).

Brings up its own sandbox (3 nodes, 1 NAT'd), or reuses a running one with ``--dir``:
``.venv/bin/python benchmarks/ingress_throughput.py [--dir /var/lib/shoal-sandbox]``.
The load generator is this file's ``load`` subcommand (stdlib only), run inside the node.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SERVICE = "ingbench"
HOST = "ingbench.sandbox.test"
COMPOSE = """
services:
  ingbench:
    image: {registry}/example/hello:latest
    environment:
      PORT: "8080"
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/health"]
      interval: 1s
      retries: 2
    deploy:
      replicas: 1
      placement: {{constraints: ["node.hostname == {node}"]}}
    x-shoal:
      ingress:
        host: {host}
        port: 8080
"""


# --- the load generator (runs inside the ingress node) -------------------------------------


class SniConnection(http.client.HTTPSConnection):
    """HTTPS to an address, with SNI and verification for another name (curl's --resolve)."""

    def __init__(self, address: str, sni: str, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(address, 443, timeout=timeout, context=context)
        self.sni, self.tls = sni, context

    def connect(self) -> None:
        raw = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(raw, server_hostname=self.sni)


def connection(url: str, host: str, ca: str) -> http.client.HTTPConnection:
    scheme, _, address = url.partition("://")
    if scheme == "https":
        return SniConnection(address, host, ssl.create_default_context(cafile=ca), timeout=10)
    name, _, port = address.partition(":")
    return http.client.HTTPConnection(name, int(port or 80), timeout=10)


def one_client(url: str, host: str, ca: str, seconds: float) -> tuple[list[float], int]:
    """Sequential GETs for ``seconds``: latencies of the good answers, count of failures."""
    conn, latencies, failures = connection(url, host, ca), [], 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        start = time.monotonic()
        try:
            conn.request("GET", "/", headers={"Host": host})
            resp = conn.getresponse()
            resp.read()
            ok = resp.status == 200
        except (OSError, http.client.HTTPException):
            conn.close()
            ok = False
        if ok:
            latencies.append(time.monotonic() - start)
        failures += 0 if ok else 1
    conn.close()
    return latencies, failures


def load(url: str, host: str, ca: str, seconds: float, concurrency: int) -> dict[str, Any]:
    with ProcessPoolExecutor(concurrency) as pool:
        futures = [pool.submit(one_client, url, host, ca, seconds) for _ in range(concurrency)]
        results = [f.result() for f in futures]
    latencies = sorted(lat for lats, _ in results for lat in lats)
    return {"ok": len(latencies), "failed": sum(f for _, f in results), "latencies": latencies}


# --- the benchmark (runs on the host) --------------------------------------------------------


def p99(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=100)[98] if len(latencies) > 1 else float("nan")


def summary(rounds: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    latencies = sorted(lat for r in rounds for lat in r["latencies"])
    ok = sum(r["ok"] for r in rounds)
    return {
        "requests_per_s": round(ok / (seconds * len(rounds)), 1),
        "p99_ms": round(p99(latencies) * 1000, 2),
        "p50_ms": round(statistics.median(latencies) * 1000, 2) if latencies else None,
        "requests": ok,
        "failed": sum(r["failed"] for r in rounds),
    }


def run_load(session: Any, node: str, url: str, ca: str, args: argparse.Namespace) -> dict[str, Any]:
    from shoal.sandbox.nodes import run_in

    argv = [sys.executable, str(Path(__file__).resolve()), "load", "--url", url, "--host", HOST]
    argv += ["--ca", ca, "--seconds", str(args.seconds), "--concurrency", str(args.concurrency)]
    got = run_in(session.record.node(node).holder_pid, argv, timeout_s=args.seconds + 60)
    if got.returncode != 0:
        raise SystemExit(f"load generator failed in {node}: {got.stderr.strip()[-300:]}")
    result: dict[str, Any] = json.loads(got.stdout)
    return result


def wait(check: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not within {timeout_s}s")
        time.sleep(0.3)


def ingress_ca(session: Any) -> str:
    from shoal.sandbox import cluster

    record = session.record
    return str(record.ingress_ca or cluster.ingress_ca(record))


def replica(session: Any) -> dict[str, Any] | None:
    tasks = [t for t in session.json("ps") if t["service"] == SERVICE]
    healthy = [t for t in tasks if t["state"] == "running" and t["health"] == "healthy"]
    return healthy[0] if healthy else None


@contextmanager
def sandbox(directory: Path | None) -> Iterator[Any]:
    from shoal.sandbox.session import Session, temporary_sandbox

    if directory is not None:
        yield Session(directory.resolve(), dict(os.environ))
        return
    with temporary_sandbox(nodes=3, nat=1) as session:
        yield session


def measure(session: Any, args: argparse.Namespace) -> dict[str, Any]:
    record = session.record
    ingress = next(n for n in record.nodes if n.ingress)
    others = [n for n in record.nodes if not n.ingress]
    target = next((n for n in others if n.nat), others[-1])
    with tempfile.TemporaryDirectory() as tmp:
        compose = Path(tmp) / "compose.yaml"
        compose.write_text(COMPOSE.format(registry=record.registry, node=target.name, host=HOST))
        session.check("deploy", "-f", str(compose), "--project", SERVICE)
    try:
        wait(lambda: replica(session) is not None, 60, "a healthy replica")
        wait(lambda: bool(ingress_ca(session)), 60, "the sandbox's ingress_ca")
        ca, task = ingress_ca(session), replica(session)
        assert task is not None
        urls = {"direct": f"http://{task['ip']}:8080", "ingress": f"https://{ingress.address}"}
        wait(lambda: run_probe(session, ingress.name, urls["ingress"], ca), 60, "the route in Caddy")
        rounds: dict[str, list[dict[str, Any]]] = {"direct": [], "ingress": []}
        for _ in range(args.rounds):
            for path in ("direct", "ingress"):
                rounds[path].append(run_load(session, ingress.name, urls[path], ca, args))
    finally:
        session.shoal("service", "rm", SERVICE)
    return report(rounds, args, ingress.name, target.name)


def run_probe(session: Any, node: str, url: str, ca: str) -> bool:
    from shoal.sandbox.nodes import run_in

    argv = ["curl", "-sf", "--cacert", ca, "--resolve", f"{HOST}:443:{url.split('//')[1]}"]
    got = run_in(session.record.node(node).holder_pid, [*argv, f"https://{HOST}/"], timeout_s=15)
    return got.returncode == 0 and "hello from" in got.stdout


def report(
    rounds: dict[str, list[dict[str, Any]]], args: argparse.Namespace, ingress: str, target: str
) -> dict[str, Any]:
    direct, through = summary(rounds["direct"], args.seconds), summary(rounds["ingress"], args.seconds)
    return {
        "benchmark": "ingress_throughput",
        "ingress_node": ingress,
        "replica_node": target,
        "concurrency": args.concurrency,
        "seconds_per_round": args.seconds,
        "rounds": args.rounds,
        "ingress": through,
        "direct": direct,
        "ratio_requests_per_s": round(through["requests_per_s"] / max(direct["requests_per_s"], 1e-9), 2),
        "ratio_p99": round(through["p99_ms"] / max(direct["p99_ms"], 1e-9), 2),
        "target_ratio": 0.5,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command")
    gen = sub.add_parser("load", help="the load generator (inside a node); prints JSON")
    gen.add_argument("--url", required=True)
    gen.add_argument("--host", required=True)
    gen.add_argument("--ca", default="")
    for p in (parser, gen):
        p.add_argument("--seconds", type=float, default=5.0)
        p.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--dir", type=Path, default=None, help="reuse this running sandbox")
    args = parser.parse_args()
    if args.command == "load":
        print(json.dumps(load(args.url, args.host, args.ca, args.seconds, args.concurrency)))
        return
    with sandbox(args.dir) as session:
        print(json.dumps(measure(session, args), indent=2))


if __name__ == "__main__":
    main()

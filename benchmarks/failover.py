"""Failover: a node is lost (agent killed, link cut) → its replicas run elsewhere. Target ≤ 10 s.

On a three-node sandbox (server defaults: heartbeat 1 s, grace 5 s), a service of three replicas
spread over the nodes; each run cuts one non-server node that holds a replica and times until
`shoal ps` shows every replica running on other nodes, then restores the node. Same-run
baseline: the time the same service takes to reach three running replicas from a fresh deploy.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import tempfile
import time
from pathlib import Path

from shoal.sandbox import cluster
from shoal.sandbox.nodes import run_in
from shoal.sandbox.session import Session, temporary_sandbox

COMPOSE = """
services:
  fo:
    image: {image}
    deploy:
      replicas: 3
      restart_policy: {{condition: any, delay: 1s}}
"""


def running_elsewhere(session: Session, lost: str) -> bool:
    tasks = [t for t in session.json("ps") if t["service"] == "fo"]
    return len(tasks) == 3 and all(t["state"] == "running" and t["node"] != lost for t in tasks)


def wait(check: object, timeout_s: float) -> float:
    start = time.monotonic()
    while not check():  # type: ignore[operator]
        if time.monotonic() - start > timeout_s:
            raise SystemExit(f"not within {timeout_s}s")
        time.sleep(0.1)
    return time.monotonic() - start


def cut(session: Session, node: str) -> float:
    """Kill the node's agent and take its link down; returns the time it happened."""
    record = session.record
    os.kill(cluster.process(record, node, "agent").pid, signal.SIGKILL)
    run_in(record.node(node).holder_pid, ["ip", "link", "set", "eth0", "down"])
    return time.monotonic()


def restore(session: Session, node: str) -> None:
    record = session.record
    holder = record.node(node).holder_pid
    run_in(holder, ["ip", "link", "set", "eth0", "up"])
    run_in(
        holder,
        ["ip", "route", "replace", "default", "via", record.node(node).address.rsplit(".", 1)[0] + ".1"],
    )
    cluster.restart_process(record, node, "agent")


def one_run(session: Session) -> float:
    lost = next(t["node"] for t in session.json("ps") if t["service"] == "fo" and t["node"] != "n1")
    start = cut(session, lost)
    try:
        wait(lambda: running_elsewhere(session, lost), 60)
        return time.monotonic() - start
    finally:
        restore(session, lost)
        wait(lambda: any(n["name"] == lost and n["state"] == "ready" for n in session.json("node", "ls")), 60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with temporary_sandbox(nodes=3, nat=0) as session, tempfile.TemporaryDirectory() as tmp:
        compose = Path(tmp) / "compose.yaml"
        compose.write_text(COMPOSE.format(image=f"{session.record.registry}/example/hello:latest"))
        start = time.monotonic()
        session.check("deploy", "-f", str(compose), "--project", "failover")
        deploy_s = time.monotonic() - start
        samples = [one_run(session) for _ in range(args.runs)]
    result = {
        "benchmark": "failover",
        "runs": len(samples),
        "failover_s": [round(s, 2) for s in samples],
        "failover_p50_s": round(statistics.median(samples), 2),
        "failover_max_s": round(max(samples), 2),
        "target_s": 10,
        "baseline_fresh_deploy_s": round(deploy_s, 2),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

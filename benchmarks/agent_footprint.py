"""Agent RSS and idle CPU with 20 containers on its node. Target ≤ 60 MB and < 1 % of a core.

A one-node sandbox; the agent is measured idle with no containers (the same-run baseline), then
with a service of 20 replicas running on it, each over a quiet window: RSS from
/proc/PID/status (VmRSS) and CPU from the utime+stime delta of /proc/PID/stat.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from shoal.sandbox import cluster
from shoal.sandbox.session import Session, temporary_sandbox

COMPOSE = """
services:
  idle:
    image: {image}
    deploy:
      replicas: 20
      restart_policy: {{condition: any, delay: 1s}}
"""
TICKS = os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def measure(pid: int, window_s: float) -> dict[str, float]:
    start_cpu, start = cpu_s(pid), time.monotonic()
    time.sleep(window_s)
    cpu = (cpu_s(pid) - start_cpu) / (time.monotonic() - start)
    return {"rss_mb": round(rss_mb(pid), 1), "cpu_percent_of_core": round(100 * cpu, 2)}


def running(session: Session, count: int) -> bool:
    tasks = [t for t in session.json("ps") if t["service"] == "idle"]
    return len(tasks) == count and all(t["state"] == "running" for t in tasks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--window", type=float, default=30.0)
    args = parser.parse_args()
    with temporary_sandbox(nodes=1, nat=0) as session, tempfile.TemporaryDirectory() as tmp:
        agent = cluster.process(session.record, "n1", "agent").pid
        time.sleep(5)
        baseline = measure(agent, args.window)
        compose = Path(tmp) / "compose.yaml"
        compose.write_text(COMPOSE.format(image=f"{session.record.registry}/example/hello:latest"))
        session.check("deploy", "-f", str(compose), "--project", "footprint", timeout_s=600)
        deadline = time.monotonic() + 300
        while not running(session, 20) and time.monotonic() < deadline:
            time.sleep(1)
        time.sleep(5)
        loaded = measure(agent, args.window)
    result = {
        "benchmark": "agent_footprint",
        "containers": 20,
        "window_s": args.window,
        "with_20_containers": loaded,
        "baseline_no_containers": baseline,
        "target": {"rss_mb": 60, "cpu_percent_of_core": 1},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

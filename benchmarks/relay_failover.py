"""Relay failover: how long NAT↔NAT traffic stops when the relay it goes through is lost.

Four real "nodes" (namespaces, wireguard-go): a and b public, c and d behind a NAT router, a
container on c pinging a container on d every 100 ms through the relay. Each run cuts the relay c
and d use now (its underlay link down) while their agents' relay watch ticks every second, as
the agent loop does between passes, and times from the cut to the first reply after it; then the
link comes back (c and d stay where they are: no flap) and the next run cuts the other relay.
Same-run baseline: one run with the watch off (what agents did before: nothing, for a window of
`--window` seconds). Then c and d behind two port-preserving NATs: TCP throughput (iperf3) and
ping latency container → container through the relay, then over the direct tunnel they punch.
Prints JSON with the medians. Run as root:
``.venv/bin/python benchmarks/relay_failover.py [--runs 5] [--seconds 5]``.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shoal.agent.render.relays import STALE_S
from tests.integration.net.topology import Topology, nsexec

PAIR = ("c", "d")


class Watch(threading.Thread):
    """The agents' relay watch on c and d, once a second."""

    def __init__(self, topology: Topology) -> None:
        super().__init__(daemon=True)
        self.topology = topology
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(1.0):
            for name in PAIR:
                self.topology.nodes[name].wireguard.watch(self.topology.states[name])  # type: ignore[union-attr]


def relay_of(topology: Topology) -> str:
    chosen = {topology.nodes[n].wireguard.relay for n in PAIR}  # type: ignore[union-attr]
    return chosen.pop() if len(chosen) == 1 else ""


def target(topology: Topology) -> str:
    return topology.nodes["d"].network.ipam.allocations["api-2"]  # type: ignore[union-attr]


def outage(topology: Topology, relay: str, window_s: float) -> float | None:
    """Cut `relay`; seconds from the cut to the first reply after it (None: none in the window)."""
    source = topology.nodes["c"].containers["api-1"]
    count = str(int(window_s * 10))
    argv = [
        "nsenter",
        f"--net={source}",
        "ping",
        "-D",
        "-n",
        "-i",
        "0.1",
        "-W",
        "1",
        "-c",
        count,
        target(topology),
    ]
    ping = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)
    cut = time.time()
    link(topology, relay, "down")
    try:
        out, _ = ping.communicate(timeout=window_s + 30)
    finally:
        link(topology, relay, "up")
    replies = [float(t) for t in re.findall(r"^\[(\d+\.\d+)\] \d+ bytes from", out, re.M)]
    before = [t for t in replies if t < cut]
    gap_start = max(before) if before else cut
    after = [t for t in replies if t > cut + 0.15]  # a reply already on its way at the cut is not news
    return round(min(after) - max(gap_start, cut), 2) if after else None


def link(topology: Topology, node: str, state: str) -> None:
    nsexec(topology.nodes[node].netns, "ip", "link", "set", "eth0", state)


def settle(topology: Topology, watch: Watch | None) -> None:
    """After a restore: the cut relay's keepalives flow again before the next run."""
    time.sleep(STALE_S + 2 if watch else 3)


def measure(topology: Topology, runs: int, window_s: float) -> dict[str, object]:
    baseline_relay = relay_of(topology) or "a"
    baseline = outage(topology, baseline_relay, window_s)  # no watch: nobody moves
    settle(topology, None)
    watch = Watch(topology)
    watch.start()
    try:
        time.sleep(2)
        times, cut, flaps = [], [], 0
        for _ in range(runs):
            relay = relay_of(topology)
            cut.append(relay)
            times.append(outage(topology, relay, window_s))
            settle(topology, watch)
            flaps += relay_of(topology) == relay  # back on the relay just restored: a flap
    finally:
        watch.stopped.set()
        watch.join()
    resumed = [t for t in times if t is not None]
    return {
        "benchmark": "relay_failover",
        "runs": runs,
        "relays_cut": cut,
        "resume_s": times,
        "resume_median_s": statistics.median(resumed) if resumed else None,
        "resume_max_s": max(resumed) if resumed else None,
        "not_resumed_runs": len(times) - len(resumed),
        "flaps_back": flaps,
        "baseline_no_watch_resume_s": baseline,
        "baseline_window_s": window_s,
        "stale_s": STALE_S,
        "watch_period_s": 1.0,
    }


def path_figures(topology: Topology, seconds: int) -> dict[str, float]:
    """iperf3 c → d (Mbit/s) and the median ping RTT (ms) over the path in use now."""
    source, sink = topology.nodes["c"].containers["api-1"], topology.nodes["d"].containers["api-2"]
    server = topology.spawn(sink, "iperf3", "-s", "-1", "-B", target(topology))
    time.sleep(0.5)
    out = nsexec(source, "iperf3", "-J", "-c", target(topology), "-t", str(seconds), timeout=seconds + 30)
    server.wait(timeout=10)
    rate = float(json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"]) / 1e6
    pings = nsexec(source, "ping", "-n", "-c", "20", "-i", "0.05", target(topology)).stdout
    rtts = [float(x) for x in re.findall(r"time=([\d.]+) ms", pings)]
    return {"mbit_s": round(rate, 1), "rtt_median_ms": round(statistics.median(rtts), 3)}


def direct_vs_relayed(seconds: int) -> dict[str, object]:
    topology = Topology(["a", "b"], ["c", "d"], separate_nats=True)
    try:
        topology.build()
        topology.start({"c": ["api-1"], "d": ["api-2"]})
        nsexec(topology.nodes["c"].containers["api-1"], "ping", "-c", "3", "-W", "2", target(topology))
        relayed = path_figures(topology, seconds)
        topology.learn_endpoints()
        watch = Watch(topology)
        for name in PAIR:
            topology.nodes[name].wireguard.reconcile(topology.states[name])  # type: ignore[union-attr]
        watch.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(topology.nodes[n].wireguard.direct for n in PAIR):  # type: ignore[union-attr]
            time.sleep(0.5)
        watch.stopped.set()
        watch.join()
        direct = path_figures(topology, seconds)
        return {"relayed": relayed, "direct": direct, "nat": "two port-preserving NATs, punched"}
    finally:
        topology.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    topology = Topology(["a", "b"], ["c", "d"])
    try:
        topology.build()
        topology.start({"c": ["api-1"], "d": ["api-2"]})
        nsexec(topology.nodes["c"].containers["api-1"], "ping", "-c", "3", "-W", "2", target(topology))
        figures = measure(topology, args.runs, args.window)
    finally:
        topology.close()
    figures["nat_to_nat"] = direct_vs_relayed(args.seconds)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

"""Issue 21 on the session sandbox: NAT↔NAT traffic outlives its relay and the server.

A replica on n3 serves, a replica on n4 fetches from it in a loop (one `runc exec` running a shell
loop that stamps each try with /proc/uptime). n1 — the server's machine and the preferred relay —
is cut off the network; n3 and n4 move to n2 by themselves (the server is unreachable), and the
fetches resume within 10 s and keep succeeding. The link is restored in `finally`, and the test
waits for every node to be ready again. For that test n3 is kept on relays (`shoal.direct=false`):
n3 and n4 sit behind one NAT, so they otherwise talk directly over their LAN, which the second
test shows, with every relay cut off. Figures come from `benchmarks/relay_failover.py`.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.sandbox import disturb, state
from tests.e2e.helpers import SANDBOX, Sandbox, wait_for
from tests.e2e.test_failures import runc_roots

PAIR = """
services:
  srv:
    image: {image}
    environment: {{PORT: "8080"}}
    deploy:
      placement: {{constraints: ["node.hostname == n3"]}}
      restart_policy: {{condition: any, delay: 1s}}
  cli:
    image: {image}
    environment: {{PORT: "8080"}}
    deploy:
      placement: {{constraints: ["node.hostname == n4"]}}
      restart_policy: {{condition: any, delay: 1s}}
"""
URL = "http://srv.relay.shoal.internal:8080/"
LOOP = (
    "i=0; while [ $i -lt {tries} ]; do "
    "if timeout 1 wget -q -O /dev/null {url}; then r=ok; else r=fail; fi; "
    'echo "$r $(cut -d" " -f1 /proc/uptime)"; sleep 0.2; i=$((i+1)); done'
)


@pytest.fixture(scope="module")
def pair(cluster: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    compose = tmp_path_factory.mktemp("relay") / "pair.yaml"
    compose.write_text(PAIR.format(image=f"{cluster.status['registry']}/example/hello:latest"))
    got = cluster.shoal("deploy", "-f", str(compose), "--project", "relay", timeout=300)
    assert got.returncode == 0, got.stderr or got.stdout
    try:
        yield cluster
    finally:
        cluster.shoal("node", "label", "n3", "shoal.direct-")
        cluster.shoal("node", "label", "n2", "shoal.relay-")
        removed = cluster.shoal("service", "rm", "srv", "cli", "-p", "relay")
        assert removed.returncode == 0, removed.stderr or removed.stdout


def test_the_relays_are_the_public_nodes_the_join_tokens_marked(cluster: Sandbox) -> None:
    """Issue 18: each sandbox node joined with a token of its own; the public ones' tokens make
    them relays and the last public one's makes it the ingress, NAT'd ones are neither."""
    shown = {n: cluster.shoal_json("node", "inspect", n) for n in ("n1", "n2", "n3")}
    assert [shown[n]["is_relay"] for n in ("n1", "n2", "n3")] == [True, True, False]
    assert [shown[n]["ingress"] for n in ("n1", "n2", "n3")] == [False, True, False]


def _running(cluster: Sandbox, node: str, prefix: str) -> tuple[str, str]:
    """(runc root, id) of the node's running container whose id starts with `prefix` (a replica
    replaced after its node came back may still be listed, stopped)."""
    for root in runc_roots(cluster, node):
        got = cluster.exec(node, "runc", "--root", root, "list", "--format", "json")
        for listed in json.loads(got.stdout or "null") or []:
            if listed["id"].startswith(prefix) and listed["status"] == "running":
                return root, listed["id"]
    raise AssertionError(f"no running container {prefix}* on {node}")


def _fetches(cluster: Sandbox) -> bool:
    root, cid = _running(cluster, "n4", "relay-cli-")
    fetch = ["timeout", "2", "wget", "-q", "-O", "-", URL]
    return "hello" in cluster.exec("n4", "runc", "--root", root, "exec", cid, *fetch).stdout


def _relayed_via(cluster: Sandbox, node: str) -> dict[str, str]:
    peers = cluster.shoal_json("node", "inspect", node)["peers"]
    return {p["name"]: p["via"] for p in peers if p["path"] == "relayed"}


def _prober(cluster: Sandbox, tries: int) -> subprocess.Popen[str]:
    """The fetch loop in n4's client container, in the background (one line per try)."""
    root, cid = _running(cluster, "n4", "relay-cli-")
    argv = [*_sandbox_exec(cluster), "n4", "--", "runc", "--root", root, "exec", cid]
    script = LOOP.format(tries=tries, url=URL)
    return subprocess.Popen([*argv, "sh", "-c", script], stdout=subprocess.PIPE, text=True, env=cluster.env)


def _onto_n1(cluster: Sandbox) -> None:
    """n3 and n4 on n1, the server's machine, as their relay. An earlier test that cut n1 left
    them on n2, where they stay (no flap back): n2 is barred from relaying until they move."""
    if _relayed_via(cluster, "n3").get("n4") != "n1":
        assert cluster.shoal("node", "label", "n2", "shoal.relay=false").returncode == 0
        try:
            wait_for(lambda: _relayed_via(cluster, "n3").get("n4") == "n1", 30, "n3 moves to n1, n2 barred")
        finally:
            assert cluster.shoal("node", "label", "n2", "shoal.relay-").returncode == 0
    wait_for(lambda: _relayed_via(cluster, "n3").get("n4") == "n1", 30, "n3 reports n4 relayed via n1")
    wait_for(lambda: _relayed_via(cluster, "n4").get("n3") == "n1", 30, "n4 reports n3 relayed via n1")
    wait_for(lambda: _fetches(cluster), 30, "cli (n4) -> srv (n3) through n1")


def _sandbox_exec(cluster: Sandbox) -> list[str]:
    return [*SANDBOX, "exec", "--dir", str(cluster.dir)]


def _resumed_after(lines: list[str], cut_at: float, until: float) -> tuple[float, int]:
    """Seconds from the cut to the first success after a failure, and the failures after it
    (until the link is restored: what the control plane does then is another test's)."""
    tries = [(r, float(t)) for r, t in (line.split() for line in lines if line.count(" ") == 1)]
    after = [(r, t) for r, t in tries if cut_at <= t < until]
    first_fail = next(i for i, (r, _) in enumerate(after) if r == "fail")
    back = next(i for i in range(first_fail, len(after)) if after[i][0] == "ok")
    return after[back][1] - cut_at, sum(1 for r, _ in after[back:] if r == "fail")


def _uptime() -> float:
    return float(Path("/proc/uptime").read_text().split()[0])


def _ready(cluster: Sandbox) -> bool:
    got = cluster.shoal("node", "ls", "--output", "json", timeout=20)
    return got.returncode == 0 and '"down"' not in got.stdout and '"state": "ready"' in got.stdout


def _paths(cluster: Sandbox, node: str) -> dict[str, str]:
    peers = cluster.shoal_json("node", "inspect", node)["peers"]
    return {p["name"]: p["path"] for p in peers}


def _cut(cluster: Sandbox, nodes: list[str], seconds: float) -> tuple[float, float]:
    """Cut `nodes` off for `seconds` (restored even on failure); /proc/uptime at cut and restore."""
    cut_at = _uptime()
    try:
        for node in nodes:
            assert cluster.exec(node, "ip", "link", "set", "eth0", "down").returncode == 0
        time.sleep(seconds)
    finally:
        for node in nodes:
            cluster.exec(node, "ip", "link", "set", "eth0", "up")
            gateway = disturb.gateway(state.load(cluster.dir), node)  # a link down drops its routes
            cluster.exec(node, "ip", "route", "replace", "default", "via", gateway)
    return cut_at, _uptime()


def test_natted_traffic_resumes_through_another_relay_with_the_server_cut_off(pair: Sandbox) -> None:
    assert pair.shoal("node", "label", "n3", "shoal.direct=false").returncode == 0
    wait_for(lambda: _paths(pair, "n3").get("n4") == "relayed", 30, "n3 goes to n4 through a relay")
    wait_for(lambda: _fetches(pair), 90, "cli (n4) -> srv (n3) through the relay")
    _onto_n1(pair)
    prober = _prober(pair, tries=100)
    time.sleep(3)
    cut_at, restored_at = _cut(pair, ["n1"], 20)
    out, _ = prober.communicate(timeout=120)
    resumed_s, failed_after = _resumed_after(out.splitlines(), cut_at, restored_at)
    assert resumed_s <= 10, out
    assert failed_after == 0, out  # once back, it went on through the cut
    wait_for(lambda: _ready(pair), 90, "every node ready again")
    wait_for(lambda: _relayed_via(pair, "n3").get("n4") == "n2", 30, "n3 reports n4 relayed via n2")
    assert _relayed_via(pair, "n4") == {"n3": "n2"}  # n1 is back: no flap


def test_natted_nodes_behind_one_nat_talk_over_their_lan_with_every_relay_cut(pair: Sandbox) -> None:
    assert pair.shoal("node", "label", "n3", "shoal.direct-").returncode == 0
    wait_for(lambda: _fetches(pair), 90, "cli (n4) -> srv (n3) once the nodes are back")
    wait_for(lambda: _paths(pair, "n3").get("n4") == "direct", 60, "n3 reports a direct path to n4")
    wait_for(lambda: _paths(pair, "n4").get("n3") == "direct", 30, "n4 reports a direct path to n3")
    lan = pair.shoal_json("node", "inspect", "n3")["peers"]
    assert next(p for p in lan if p["name"] == "n4")["endpoint"].startswith(pair.node("n4")["address"])
    wait_for(lambda: _fetches(pair), 30, "cli (n4) -> srv (n3) over the LAN")
    prober = _prober(pair, tries=50)
    time.sleep(2)
    cut_at, restored_at = _cut(pair, ["n1", "n2"], 10)
    out, _ = prober.communicate(timeout=120)
    tries = [line.split() for line in out.splitlines() if line.count(" ") == 1]
    during = [r for r, t in tries if cut_at <= float(t) < restored_at]
    assert len(during) >= 10 and set(during) == {"ok"}, out
    wait_for(lambda: _ready(pair), 90, "every node ready again")

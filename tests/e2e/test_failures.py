"""Issue 5's failure behaviour, on the session sandbox with the example app deployed.

The tests run in file order and each leaves the cluster as it found it (agents and server
running, links up, nodes active). Waits have generous limits: the figures (failover time) come
from `benchmarks/failover.py`, never from an assertion here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shoal.sandbox import cluster as sbx_cluster
from shoal.sandbox import state
from shoal.sandbox.teardown import runc_containers
from tests.e2e.helpers import Sandbox, wait_for

COMPOSE = Path(__file__).resolve().parents[2] / "examples" / "hello" / "compose.yaml"
HOST = "hello.sandbox.test"


def replicas(cluster: Sandbox, service: str = "web") -> list[dict[str, Any]]:
    return [t for t in cluster.shoal_json("ps") if t["service"] == service]


def healthy(cluster: Sandbox, count: int, service: str = "web") -> bool:
    tasks = replicas(cluster, service)
    return len(tasks) == count and all(t["state"] == "running" and t["health"] == "healthy" for t in tasks)


def runc_roots(cluster: Sandbox, node: str) -> set[str]:
    """The runc roots under a node's /run (wherever the agent keeps them)."""
    holder = state.load(cluster.dir).node(node).holder_pid
    return {root for root, _ in runc_containers(Path(f"/proc/{holder}/root/run"))}


def runc_pids(cluster: Sandbox, node: str) -> dict[str, int]:
    """Container id → pid of the running containers under the node's runc roots."""
    pids: dict[str, int] = {}
    for root in runc_roots(cluster, node):
        got = cluster.exec(node, "runc", "--root", root, "list", "--format", "json")
        listed = json.loads(got.stdout or "null") or []
        pids |= {c["id"]: c["pid"] for c in listed if c["status"] == "running"}
    return pids


def runc_exec(cluster: Sandbox, node: str, prefix: str, *cmd: str) -> subprocess.CompletedProcess[str]:
    """Run a command in the node's running container whose id starts with ``prefix``."""
    for root in runc_roots(cluster, node):
        got = cluster.exec(node, "runc", "--root", root, "list", "-q")
        for cid in got.stdout.split():
            if cid.startswith(prefix):
                return cluster.exec(node, "runc", "--root", root, "exec", cid, *cmd)
    raise AssertionError(f"no container {prefix}* on {node}")


def kill_process(cluster: Sandbox, node: str, role: str) -> None:
    record = state.load(cluster.dir)
    os.kill(sbx_cluster.process(record, node, role).pid, signal.SIGKILL)


def restart(cluster: Sandbox, node: str, role: str) -> None:
    sbx_cluster.restart_process(state.load(cluster.dir), node, role)


def agent_log_tail(cluster: Sandbox, node: str) -> str:
    log = Path(sbx_cluster.process(state.load(cluster.dir), node, "agent").log)
    lines = [line for line in log.read_text(errors="replace").splitlines() if "HTTP Request" not in line]
    return " | ".join(lines[-8:])


def api_health(cluster: Sandbox) -> tuple[int, str]:
    argv = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "--cacert", cluster.status["ca"]]
    got = subprocess.run(
        [*argv, f"{cluster.status['server']}/api/v1/health"], capture_output=True, text=True, check=False
    )
    body, _, code = got.stdout.rpartition("\n")
    return int(code or 0), body


@pytest.fixture(scope="module")
def hello(cluster: Sandbox) -> Iterator[Sandbox]:
    got = cluster.shoal("deploy", "-f", str(COMPOSE), timeout=300)
    assert got.returncode == 0, got.stderr or got.stdout
    wait_for(lambda: healthy(cluster, 3), 120, "3 healthy replicas of web")
    yield cluster


def test_example_app_is_served_through_the_ingress(hello: Sandbox) -> None:
    status = json.loads(hello.run("status", "--output", "json").stdout)
    ingress = next(n["address"] for n in status["nodes"] if n["ingress"])
    wait_for(
        lambda: "ingress_ca" in json.loads(hello.run("status", "--output", "json").stdout), 60, "ingress CA"
    )
    ca = json.loads(hello.run("status", "--output", "json").stdout)["ingress_ca"]
    curl = ["curl", "-sf", "--cacert", ca, "--resolve", f"{HOST}:443:{ingress}", f"https://{HOST}/"]
    wait_for(
        lambda: b"hello from" in subprocess.run(curl, capture_output=True, check=False).stdout,
        60,
        "page via ingress",
    )


def test_killed_agent_leaves_containers_running_and_adopts_them(hello: Sandbox) -> None:
    node = next(t["node"] for t in replicas(hello))
    before = runc_pids(hello, node)
    assert before
    kill_process(hello, node, "agent")
    time.sleep(2)
    assert runc_pids(hello, node) == before
    restart(hello, node, "agent")
    wait_for(lambda: healthy(hello, 3), 60, "replicas healthy after the agent restarted")
    time.sleep(3)
    assert runc_pids(hello, node) == before, "the restarted agent restarted containers"


def _hello_pids(cluster: Sandbox, node: str) -> set[tuple[str, int]]:
    """This module's service's running containers on a node (another test's may still be stopping)."""
    return {(cid, pid) for cid, pid in runc_pids(cluster, node).items() if cid.startswith("hello-")}


def test_database_outage_gives_503_and_recovers(hello: Sandbox) -> None:
    pg = str(sbx_cluster.PG_DIR / "data")
    pg_ctl = ["runuser", "-u", "postgres", "--", "/usr/lib/postgresql/15/bin/pg_ctl", "-D", pg]
    containers = {n: _hello_pids(hello, n) for n in ("n1", "n2", "n3", "n4")}
    assert hello.exec("n1", *pg_ctl, "-m", "fast", "-w", "stop").returncode == 0
    try:
        code, body = api_health(hello)
        assert code == 503
        assert "database" in body.lower()
        time.sleep(3)
        during = {n: _hello_pids(hello, n) for n in containers}
        lost = [n for n in containers if during[n] != containers[n]]
        assert not lost, f"containers changed on {lost} during the outage: {agent_log_tail(hello, lost[0])}"
    finally:
        log = "/var/lib/shoal/server/postgres/postgres.log"
        assert hello.exec("n1", *pg_ctl, "-l", log, "-w", "start").returncode == 0
    wait_for(lambda: api_health(hello)[0] == 200, 60, "API healthy after the database came back")
    wait_for(lambda: healthy(hello, 3), 60, "replicas healthy after the outage")


def test_killed_server_mid_deploy_completes_after_restart(hello: Sandbox, tmp_path: Path) -> None:
    changed = tmp_path / "compose.yaml"
    changed.write_text(COMPOSE.read_text().replace('PORT: "8080"', 'PORT: "8080"\n      GREETING: "v2"'))
    got = hello.shoal("deploy", "-f", str(changed), "--detach")
    assert got.returncode == 0, got.stderr
    kill_process(hello, "n1", "server")
    restart(hello, "n1", "server")
    wait_for(lambda: api_health(hello)[0] == 200, 60, "API back after the server restarted")
    got = hello.shoal("deploy", "-f", str(changed), timeout=300)
    assert got.returncode == 0, got.stderr or got.stdout
    wait_for(lambda: healthy(hello, 3), 120, "the new revision healthy")


def test_lost_node_replicas_move_and_return_stale_ones_stop(hello: Sandbox) -> None:
    lost = next(t["node"] for t in replicas(hello) if t["node"] not in ("n1", "n2"))
    kill_process(hello, lost, "agent")
    assert hello.exec(lost, "ip", "link", "set", "eth0", "down").returncode == 0
    try:
        wait_for(
            lambda: healthy(hello, 3) and lost not in {t["node"] for t in replicas(hello)}, 60, "failover"
        )
    finally:
        hello.exec(lost, "ip", "link", "set", "eth0", "up")
        hello.exec(lost, "ip", "route", "replace", "default", "via", "198.51.100.1")
        restart(hello, lost, "agent")
    wait_for(lambda: runc_pids(hello, lost) == {}, 60, f"stale replicas on {lost} stopped")
    assert healthy(hello, 3)


def test_drain_moves_replicas_off_and_activate_lets_them_back(hello: Sandbox) -> None:
    node = next(t["node"] for t in replicas(hello))
    assert hello.shoal("node", "drain", node).returncode == 0
    try:
        wait_for(lambda: healthy(hello, 3) and node not in {t["node"] for t in replicas(hello)}, 60, "drain")
    finally:
        assert hello.shoal("node", "activate", node).returncode == 0
    nodes = {n["name"]: n for n in hello.shoal_json("node", "ls")}
    assert nodes[node]["availability"] == "active"
    assert hello.shoal("service", "scale", "web=8").returncode == 0
    wait_for(lambda: node in {t["node"] for t in replicas(hello)}, 60, f"a replica back on {node}")
    assert hello.shoal("service", "scale", "web=3").returncode == 0
    wait_for(lambda: healthy(hello, 3), 60, "scaled back to 3")


NAT_PAIR = """
services:
  a:
    image: {image}
    deploy:
      placement: {{constraints: ["node.hostname == n3"]}}
      restart_policy: {{condition: any, delay: 1s}}
  b:
    image: {image}
    deploy:
      placement: {{constraints: ["node.hostname == n4"]}}
      restart_policy: {{condition: any, delay: 1s}}
"""


def test_replicas_on_two_nat_nodes_reach_each_other_by_name(hello: Sandbox, tmp_path: Path) -> None:
    compose = tmp_path / "pair.yaml"
    compose.write_text(NAT_PAIR.format(image=f"{hello.status['registry']}/example/hello:latest"))
    got = hello.shoal("deploy", "-f", str(compose), "--project", "natpair", timeout=300)
    assert got.returncode == 0, got.stderr or got.stdout
    try:
        fetch = ["wget", "-q", "-O", "-", "http://b.natpair.shoal.internal:8080/"]
        wait_for(
            lambda: "hello from b" in runc_exec(hello, "n3", "natpair-a-", *fetch).stdout,
            60,
            "a (n3) -> b (n4) by name",
        )
    finally:
        removed = hello.shoal("service", "rm", "a", "b", "-p", "natpair")
        assert removed.returncode == 0, removed.stderr or removed.stdout

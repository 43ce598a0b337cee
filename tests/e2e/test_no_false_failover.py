"""Issue 15: no false failover, and fencing, on the session sandbox (n1 is the server's machine).

A short disturbance moves nothing: a 12 s pause of the server process, 40 s of 20 % packet loss
on one worker's link, a 12 s cut of the server machine's own link (the server then says in an
event that it suspected itself). A removed node whose agent still runs fences itself: it stops
its containers. Each test undoes what it did (link, nft table, paused process, removed node) in
`finally`; the figures come from `benchmarks/failover.py`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shoal.sandbox import cluster as sbx_cluster
from shoal.sandbox import disturb, state
from tests.e2e.helpers import Sandbox, wait_for
from tests.e2e.test_failures import kill_process, runc_pids

PROJECT = "steady"
COMPOSE = """
services:
  keep:
    image: {image}
    deploy:
      replicas: 4
      restart_policy: {{condition: any, delay: 1s}}
"""
AFTERMATH_S = 15.0  # a false failover shows within the grace plus the hold after a disturbance


def placement(cluster: Sandbox) -> dict[int, str]:
    """Replica → node of the project's replicas meant to run."""
    rows = [r for r in cluster.shoal_json("ps") if r.get("project") == PROJECT]
    return {r["replica"]: r["node"] for r in rows}


def running(cluster: Sandbox) -> bool:
    rows = [r for r in cluster.shoal_json("ps") if r.get("project") == PROJECT]
    return len(rows) == 4 and all(r["state"] == "running" for r in rows)


def last_event(cluster: Sandbox) -> int:
    past = cluster.shoal_json("events", "--limit", "1")
    return max((e["id"] for e in past), default=0)


def events_since(cluster: Sandbox, mark: int) -> list[dict[str, Any]]:
    return list(cluster.shoal_json("events", "--since", str(mark), "--limit", "1000"))


def nodes_down(cluster: Sandbox) -> list[str]:
    return [n["name"] for n in cluster.shoal_json("node", "ls") if n["state"] == "down"]


def api_answers(cluster: Sandbox) -> bool:
    return cluster.shoal("node", "ls", timeout=10).returncode == 0


def story(cluster: Sandbox, mark: int) -> str:
    """The events since the mark, one line each, for a failure's message."""
    return " | ".join(f"{e['kind']} {e['subject']}: {e['message']}" for e in events_since(cluster, mark))


def assert_nothing_moved(cluster: Sandbox, before: dict[int, str], mark: int) -> list[dict[str, Any]]:
    """Watch the aftermath: no node down, no replica placed anywhere else; the events since."""
    wait_for(lambda: api_answers(cluster), 60, "the API answers again")
    deadline = time.monotonic() + AFTERMATH_S
    while time.monotonic() < deadline:
        assert nodes_down(cluster) == [], f"a node was declared lost: {story(cluster, mark)}"
        assert placement(cluster) == before, f"a replica moved: {story(cluster, mark)}"
        time.sleep(0.5)
    happened = events_since(cluster, mark)
    assert not [e for e in happened if e["kind"] == "node.down"], happened
    wait_for(lambda: running(cluster), 60, "every replica running")
    return happened


@pytest.fixture(scope="module")
def spread(cluster: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    compose = tmp_path_factory.mktemp("steady") / "compose.yaml"
    compose.write_text(COMPOSE.format(image=f"{cluster.status['registry']}/example/hello:latest"))
    got = cluster.shoal("deploy", "-f", str(compose), "--project", PROJECT, timeout=300)
    assert got.returncode == 0, got.stderr or got.stdout
    try:
        wait_for(lambda: running(cluster), 120, "4 running replicas")
        yield cluster
    finally:
        cluster.shoal("project", "rm", PROJECT)


def test_a_paused_server_moves_nothing(spread: Sandbox) -> None:
    before, mark = placement(spread), last_event(spread)
    disturb.pause_server(state.load(spread.dir), 12.0)
    assert_nothing_moved(spread, before, mark)


def test_packet_loss_on_a_worker_link_moves_nothing(spread: Sandbox) -> None:
    before, mark = placement(spread), last_event(spread)
    worker = next(node for node in before.values() if node != "n1")
    record = state.load(spread.dir)
    try:
        with disturb.packet_loss(record, worker, 20):
            deadline = time.monotonic() + 40.0
            while time.monotonic() < deadline:
                assert nodes_down(spread) == [], f"a node was declared lost under 20 % loss on {worker}"
                time.sleep(1.0)
    finally:
        assert not disturb.loss_table_present(record, worker)
    assert_nothing_moved(spread, before, mark)


def test_a_cut_at_the_server_moves_nothing_and_the_server_suspects_itself(spread: Sandbox) -> None:
    before, mark = placement(spread), last_event(spread)
    with disturb.link_cut(state.load(spread.dir), "n1"):
        time.sleep(12.0)
    happened = assert_nothing_moved(spread, before, mark)
    suspected = [e for e in happened if e["kind"] == "server.suspect"]
    assert len(suspected) == 1, happened
    assert "suspects itself" in suspected[0]["message"]


def fenced_lines(cluster: Sandbox, node: str) -> list[str]:
    log = Path(sbx_cluster.process(state.load(cluster.dir), node, "agent").log)
    return [line for line in log.read_text(errors="replace").splitlines() if "fenced:" in line]


def rejoin(cluster: Sandbox, node: str) -> None:
    """Back into the cluster: the fenced agent ended (by its recorded pid), joined anew, restarted."""
    kill_process(cluster, node, "agent")
    token = cluster.shoal_json("node", "join-token")["token"]
    record = state.load(cluster.dir)
    sbx_cluster.join(record, record.node(node), token)
    sbx_cluster.restart_process(record, node, "agent")
    wait_for(
        lambda: any(n["name"] == node and n["state"] == "ready" for n in cluster.shoal_json("node", "ls")),
        90,
        f"{node} ready again",
    )


def test_a_removed_node_fences_itself(spread: Sandbox) -> None:
    node = next(n for n in placement(spread).values() if n not in ("n1", "n2"))
    assert runc_pids(spread, node)
    assert fenced_lines(spread, node) == []
    removed = spread.shoal("node", "rm", node)
    assert removed.returncode == 0, removed.stderr
    try:
        took = wait_for(lambda: runc_pids(spread, node) == {}, 40, f"{node}'s containers stopped")
        assert len(fenced_lines(spread, node)) == 1
        print(json.dumps({"fenced_after_s": round(took, 1)}))
    finally:
        rejoin(spread, node)
    wait_for(lambda: running(spread), 90, "every replica running after the node rejoined")

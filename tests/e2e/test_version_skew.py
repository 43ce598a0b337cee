"""The previous release's agent on a sandbox node, then its upgrade in place (issue 20's skew).

NAT'd node n4 leaves the cluster (`node rm`, its agent and tunnel ended) and joins again with the
previous minor release's own `shoal join` and `shoal agent start` (exported from its git tag,
`tests.support.releases`): its WireGuard, firewall and DNS are the old code's, driven by the current
server. A service pinned to it is deployed and answers through the ingress node over the mesh;
`shoal node ls` shows the node's old VERSION. Then the agent is upgraded as an operator would: the
current agent started over the same data dir adopts the replica (same pid, still served) and
reports the current version. Whatever happens, n4 ends the test with the current agent.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal import __version__
from shoal.sandbox import cluster as sbx_cluster
from shoal.sandbox import state
from shoal.sandbox.layout import PRIVATE_REGISTRY_PORT, REGISTRY_IP
from shoal.sandbox.nodes import alive, run_in
from tests.e2e.helpers import Sandbox, wait_for
from tests.e2e.test_failures import runc_pids
from tests.support.releases import exported_previous_release, old_shoal

NODE = "n4"
SERVICE = "skewweb"
HOST = "skewweb.sandbox.test"
WG_LINK = "shoal-wg"  # the agent's default tunnel
COMPOSE = """
services:
  skewweb:
    image: {image}
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/health"]
      interval: 1s
      retries: 2
    deploy:
      placement: {{constraints: ["node.hostname == {node}"]}}
    x-shoal:
      ingress:
        host: {host}
        port: 8080
"""


@pytest.fixture
def old_release() -> Iterator[tuple[str, Path]]:
    with exported_previous_release() as found:
        yield found


def test_previous_release_agent_serves_then_upgrades_in_place(
    cluster: Sandbox, old_release: tuple[str, Path], tmp_path: Path
) -> None:
    old_version, root = old_release
    upgraded = False
    try:
        _leave(cluster)
        _join_with(cluster, old_shoal(root))
        wait_for(lambda: _version(cluster) == old_version, 90, f"{NODE} ready with the {old_version} agent")
        compose = tmp_path / "compose.yaml"
        image = f"{cluster.status['registry']}/example/hello:latest"
        compose.write_text(COMPOSE.format(image=image, node=NODE, host=HOST))
        deployed = cluster.shoal("deploy", "-f", str(compose), timeout=180)
        assert deployed.returncode == 0, f"{deployed.stderr}{deployed.stdout}\n{_log_tail(cluster)}"
        assert _replicas(cluster) == [(NODE, "running", "healthy")]
        wait_for(lambda: "hello from" in _page(cluster), 60, f"the {old_version} node's page via ingress")
        before = _pid(cluster)
        _kill_agent(cluster)
        sbx_cluster.restart_process(state.load(cluster.dir), NODE, "agent")  # the upgrade, in place
        upgraded = True
        wait_for(lambda: _version(cluster) == __version__, 60, f"{NODE} ready with the {__version__} agent")
        time.sleep(3)  # a few passes of the new agent
        assert _pid(cluster) == before, "the upgraded agent restarted the replica"
        assert _replicas(cluster) == [(NODE, "running", "healthy")]
        wait_for(lambda: "hello from" in _page(cluster), 20, "the page after the upgrade")
    finally:
        cluster.shoal("service", "rm", SERVICE)
        if not upgraded:
            _rejoin_current(cluster)


def _leave(cluster: Sandbox) -> None:
    """`node rm`, then its agent ended by its pid and its tunnel dropped (what else ran on the
    node is not in the rejoined node's state: its next agent removes it)."""
    removed = cluster.shoal("node", "rm", NODE)
    assert removed.returncode == 0, removed.stderr
    wait_for(lambda: NODE not in _nodes(cluster), 30, f"{NODE} removed")
    time.sleep(1)
    _kill_agent(cluster)
    _drop_tunnel(cluster)


def _drop_tunnel(cluster: Sandbox) -> None:
    """The node's WireGuard device (wireguard-go, by its pid file) goes too, as on a machine joining
    afresh. Kept, it would hold sessions its peers dropped with the removed node, and a 0.1 agent
    sends into them until WireGuard's own rekey (2 minutes) before its peers hear from it again."""
    holder = state.load(cluster.dir).node(NODE).holder_pid
    pid_file = Path(f"/proc/{holder}/root/run/shoal/net/{WG_LINK}.pid")
    pid = int(pid_file.read_text()) if pid_file.exists() else 0
    cluster.exec(NODE, "ip", "link", "del", WG_LINK)
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not alive(pid), 10, f"wireguard-go (pid {pid}) gone")


def _join_with(cluster: Sandbox, shoal: list[str]) -> None:
    """`shoal join` (of the given code) on the node with the sandbox's settings, then its agent."""
    token = cluster.shoal_json("node", "join-token")["token"]
    record = state.load(cluster.dir)
    registries = f"insecure_registries={record.registry},{REGISTRY_IP}:{PRIVATE_REGISTRY_PORT}"
    argv = [*shoal, "join", record.server, "--token", token, "--name", NODE]
    argv += ["--set", f"cgroup_parent=shoal-sbx-{NODE}", "--set", registries]
    joined = run_in(record.node(NODE).holder_pid, argv, timeout_s=90)
    assert joined.returncode == 0, joined.stderr or joined.stdout
    sbx_cluster.start_process(
        record, Path(record.dir), record.node(NODE), "agent", [*shoal, "agent", "start"]
    )


def _rejoin_current(cluster: Sandbox) -> None:
    """Back to the current agent after a failure: out of the cluster if it is in, joined anew."""
    if NODE in _nodes(cluster):
        cluster.shoal("node", "rm", NODE)
        wait_for(lambda: NODE not in _nodes(cluster), 30, f"{NODE} removed")
    _kill_agent(cluster)
    _join_with(cluster, [*sbx_cluster.SHOAL])
    wait_for(lambda: _version(cluster) == __version__, 90, f"{NODE} back with the current agent")


def _kill_agent(cluster: Sandbox) -> None:
    """The node's latest recorded agent, by its pid (it may have ended already)."""
    pid = sbx_cluster.process(state.load(cluster.dir), NODE, "agent").pid
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not alive(pid), 10, f"agent pid {pid} gone")


def _nodes(cluster: Sandbox) -> dict[str, dict[str, str]]:
    return {n["name"]: n for n in cluster.shoal_json("node", "ls")}


def _version(cluster: Sandbox) -> str:
    """The node's agent version once it is ready ("" before)."""
    node = _nodes(cluster).get(NODE, {})
    return node.get("version", "") if node.get("state") == "ready" else ""


def _replicas(cluster: Sandbox) -> list[tuple[str, str, str]]:
    rows = [r for r in cluster.shoal_json("ps") if r["service"] == SERVICE]
    return [(r["node"], r["state"], r["health"]) for r in rows]


def _page(cluster: Sandbox) -> str:
    """The service's page through the ingress node, verified against the sandbox's root."""
    status = json.loads(cluster.run("status", "--output", "json").stdout)
    ingress = next(n["address"] for n in status["nodes"] if n["ingress"])
    argv = ["curl", "-sf", "--max-time", "10", "--cacert", status.get("ingress_ca", "")]
    argv += ["--resolve", f"{HOST}:443:{ingress}", f"https://{HOST}/"]
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout


def _pid(cluster: Sandbox) -> int:
    """The replica's pid on the node (runc's state, read inside the node)."""
    (pid,) = [p for cid, p in runc_pids(cluster, NODE).items() if SERVICE in cid]
    return pid


def _log_tail(cluster: Sandbox) -> str:
    log = Path(sbx_cluster.process(state.load(cluster.dir), NODE, "agent").log)
    lines = [line for line in log.read_text(errors="replace").splitlines() if "HTTP Request" not in line]
    return "\n".join(lines[-15:])

"""Issue 21, the other outcome: behind NATs that map each destination to a new port, NAT'd nodes
talk through a relay (`shoal sandbox up --nat-mode symmetric`).

Runs early (file name) with a sandbox of its own, before the session sandbox exists: the
sandbox's names (``sbx-*``) are fixed, so two cannot coexist. n3 and n4 each sit behind their own
router (``sbx-router-n3``, ``sbx-router-n4``) masquerading with ``fully-random`` source ports, so
the direct tunnel each tries to the other's observed endpoint never carries anything: a replica
on n4 reaches one on n3 through a public node, and `node inspect` says so. `down` must remove
the routers' namespaces too.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator

import pytest

from shoal.sandbox.net import sandbox_namespaces
from tests.e2e.helpers import SANDBOX, Sandbox, wait_for
from tests.e2e.test_relay_failover import PAIR, _fetches, _paths, _relayed_via

ROUTERS = ["sbx-router-n3", "sbx-router-n4"]


def _cli(sbx: Sandbox, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    argv = [*SANDBOX, *args, "--dir", str(sbx.dir)]
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout, env=sbx.env)


@pytest.fixture(scope="module")
def symmetric(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    if sandbox_namespaces():
        pytest.fail("a sandbox already exists on this machine; run `shoal sandbox down` first")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path_factory.mktemp("sym-config"))}
    sbx = Sandbox(tmp_path_factory.mktemp("sym") / "sbx", {}, env)
    try:
        up = _cli(sbx, "up", "--nodes", "4", "--nat", "2", "--nat-mode", "symmetric")
        assert up.returncode == 0, f"sandbox up failed: {up.stderr.strip()}"
        sbx.status = json.loads(_cli(sbx, "status", "--output", "json").stdout)
        yield sbx
    finally:
        down = _cli(sbx, "down", timeout=120)
        assert down.returncode == 0, down.stderr
        assert sandbox_namespaces() == [], "`down` left namespaces (a router's?)"


def _endpoint(sbx: Sandbox, node: str, peer: str) -> str:
    peers = sbx.shoal_json("node", "inspect", node)["peers"]
    return str(next(p for p in peers if p["name"] == peer)["endpoint"] or "")


def _tried_direct(sbx: Sandbox, node: str, public_ip: str) -> list[int]:
    """The latest handshakes of `node`'s WireGuard peers dialled at `public_ip` (`wg show dump`)."""
    dump = sbx.exec(node, "wg", "show", "all", "dump").stdout.splitlines()
    peers = [line.split("\t") for line in dump if len(line.split("\t")) == 9]
    return [int(p[5]) for p in peers if p[3].startswith(f"{public_ip}:")]


def test_each_natted_node_sits_behind_a_router_of_its_own(symmetric: Sandbox) -> None:
    assert symmetric.status["nat_mode"] == "symmetric"
    assert [n["address"] for n in symmetric.status["nodes"]][2:] == ["198.51.100.58", "198.51.100.74"]
    assert set(ROUTERS) <= set(sandbox_namespaces())
    assert "sbx-router" not in sandbox_namespaces()
    assert symmetric.exec("n3", "ping", "-c", "1", "-W", "1", "203.0.113.11").returncode == 0
    assert symmetric.exec("n3", "ping", "-c", "1", "-W", "1", "198.51.100.74").returncode != 0
    # Each destination sees n3 from its own router, on a port of its own (not 51820 kept).
    n3_at_n1, n3_at_n2 = _endpoint(symmetric, "n1", "n3"), _endpoint(symmetric, "n2", "n3")
    assert n3_at_n1.startswith("203.0.113.243:") and n3_at_n2.startswith("203.0.113.243:")
    assert len({n3_at_n1, n3_at_n2, "203.0.113.243:51820"}) == 3, (n3_at_n1, n3_at_n2)


def test_natted_traffic_goes_through_a_relay(
    symmetric: Sandbox, tmp_path_factory: pytest.TempPathFactory
) -> None:
    compose = tmp_path_factory.mktemp("sym-pair") / "pair.yaml"
    compose.write_text(PAIR.format(image=f"{symmetric.status['registry']}/example/hello:latest"))
    got = symmetric.shoal("deploy", "-f", str(compose), "--project", "relay", timeout=300)
    assert got.returncode == 0, got.stderr or got.stdout
    wait_for(lambda: _fetches(symmetric), 90, "cli (n4) -> srv (n3) through a relay")
    time.sleep(6)  # longer than a direct tunnel needs to come up where the NAT lets it (STALE_S 5)
    assert _paths(symmetric, "n3")["n4"] == "relayed"
    assert _relayed_via(symmetric, "n3")["n4"] in {"n1", "n2"}
    assert _relayed_via(symmetric, "n4")["n3"] in {"n1", "n2"}
    assert _fetches(symmetric)
    # n3 did try n4's observed public endpoint (its router's), and never got a handshake back.
    assert _tried_direct(symmetric, "n3", "203.0.113.244") == [0]

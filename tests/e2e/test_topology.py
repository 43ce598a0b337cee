"""The sandbox's network and nodes as DESIGN.md draws them (needs no shoal processes)."""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.helpers import SANDBOX, Sandbox

REGISTRY_CATALOG = "/v2/_catalog"


def ping(sandbox: Sandbox, node: str, address: str) -> bool:
    return sandbox.exec(node, "ping", "-c", "1", "-W", "1", address).returncode == 0


def test_status_names_every_node_and_the_registry(sandbox: Sandbox) -> None:
    nodes = sandbox.status["nodes"]
    assert [(n["name"], n["netns"], n["nat"]) for n in nodes] == [
        ("n1", "sbx-n1", False),
        ("n2", "sbx-n2", False),
        ("n3", "sbx-n3", True),
        ("n4", "sbx-n4", True),
    ]
    assert sum(n["ingress"] for n in nodes) == 1
    assert sandbox.status["registry"] == "203.0.113.2:5000"
    assert sandbox.status["nat_mode"] == "shared"


def test_public_nodes_reach_each_other_directly(sandbox: Sandbox) -> None:
    assert ping(sandbox, "n1", sandbox.node("n2")["address"])
    assert ping(sandbox, "n2", sandbox.node("n1")["address"])


def test_nat_nodes_reach_public_nodes_through_the_router(sandbox: Sandbox) -> None:
    assert ping(sandbox, "n3", sandbox.node("n1")["address"])
    # The public node sees the router's public address, not the LAN address.
    route = sandbox.exec("n3", "ip", "route", "get", sandbox.node("n1")["address"]).stdout
    assert "via 198.51.100.1" in route


def test_public_nodes_cannot_reach_nat_nodes_directly(sandbox: Sandbox) -> None:
    assert not ping(sandbox, "n1", sandbox.node("n3")["address"])
    assert not ping(sandbox, "n2", sandbox.node("n4")["address"])


def test_nat_nodes_reach_each_other_on_their_lan(sandbox: Sandbox) -> None:
    assert ping(sandbox, "n3", sandbox.node("n4")["address"])


def test_registry_answers_from_the_host_with_the_example_image(sandbox: Sandbox) -> None:
    url = f"http://{sandbox.status['registry']}{REGISTRY_CATALOG}"
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert b"example/hello" in resp.read()


@pytest.mark.parametrize("node", ["n1", "n2", "n3", "n4"])
def test_registry_answers_from_every_node(sandbox: Sandbox, node: str) -> None:
    url = f"http://{sandbox.status['registry']}{REGISTRY_CATALOG}"
    got = sandbox.exec(node, "busybox", "wget", "-q", "-O", "-", url)
    assert got.returncode == 0, got.stderr
    assert "example/hello" in got.stdout


def test_nodes_have_no_route_out_of_the_sandbox(sandbox: Sandbox) -> None:
    # The internet namespace has no default route: anything outside the sandbox is unreachable.
    for node in ("n1", "n3"):
        assert not ping(sandbox, node, "192.0.2.1")
        assert "unreachable" in sandbox.exec(node, "ping", "-c", "1", "-W", "1", "192.0.2.1").stdout.lower()


def test_exec_runs_in_the_node_with_its_hostname_and_exit_code(sandbox: Sandbox) -> None:
    assert sandbox.exec("n2", "hostname").stdout.strip() == "n2"
    assert sandbox.exec("n2", "sh", "-c", "exit 7").returncode == 7
    addrs = sandbox.exec("n3", "ip", "-o", "-4", "addr", "show", "eth0").stdout
    assert sandbox.node("n3")["address"] in addrs


def test_each_node_has_its_own_run_and_state_dir(sandbox: Sandbox) -> None:
    sandbox.exec("n1", "touch", "/run/sbx-marker", "/var/lib/shoal/sbx-marker")
    assert sandbox.exec("n1", "test", "-e", "/run/sbx-marker").returncode == 0
    assert sandbox.exec("n2", "test", "-e", "/run/sbx-marker").returncode == 1
    assert not Path("/run/sbx-marker").exists()
    assert (sandbox.dir / "nodes" / "n1" / "sbx-marker").exists()
    assert not (sandbox.dir / "nodes" / "n2" / "sbx-marker").exists()


def test_exec_on_an_unknown_node_is_a_one_line_error(sandbox: Sandbox) -> None:
    got = sandbox.exec("n9", "true")
    assert got.returncode != 0
    assert got.stderr.strip().count("\n") == 0
    assert "n9" in got.stderr


def test_a_second_up_is_refused_and_leaves_the_sandbox_alone(sandbox: Sandbox, tmp_path: Path) -> None:
    other = [*SANDBOX, "up", "--no-cluster", "--dir", str(tmp_path / "other")]
    got = subprocess.run(other, capture_output=True, text=True, timeout=60, check=False, env=sandbox.env)
    assert got.returncode != 0
    assert "already exists" in got.stderr
    assert got.stderr.strip().count("\n") == 0
    assert ping(sandbox, "n1", sandbox.node("n2")["address"])

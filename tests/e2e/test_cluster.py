"""The cluster `shoal sandbox up` starts: every node joined, the mesh up, the CLI pointed at it."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.helpers import Sandbox


def overlay_ips(cluster: Sandbox) -> dict[str, str]:
    return {n["name"]: n["address"] for n in cluster.shoal_json("node", "ls")}


def test_every_node_joined_and_is_ready(cluster: Sandbox) -> None:
    nodes = {n["name"]: n for n in cluster.shoal_json("node", "ls")}
    assert sorted(nodes) == ["n1", "n2", "n3", "n4"]
    assert {n["state"] for n in nodes.values()} == {"ready"}
    assert [name for name, n in nodes.items() if n["ingress"]] == ["n2"]


def test_public_nodes_advertise_endpoints_nat_nodes_none(cluster: Sandbox) -> None:
    endpoints = {n["name"]: n["endpoint"] for n in cluster.shoal_json("node", "ls")}
    assert endpoints["n1"] == "203.0.113.11:51820"
    assert endpoints["n2"] == "203.0.113.12:51820"
    assert not endpoints["n3"]
    assert not endpoints["n4"]


def test_status_gives_the_server_and_its_ca(cluster: Sandbox) -> None:
    assert cluster.status["server"] == "https://203.0.113.11:8443"
    assert Path(cluster.status["ca"]).read_text().startswith("-----BEGIN CERTIFICATE-----")


def test_server_node_reaches_nat_agents_over_the_overlay(cluster: Sandbox) -> None:
    ips = overlay_ips(cluster)
    for name in ("n3", "n4"):
        got = cluster.exec("n1", "ping", "-c", "1", "-W", "2", ips[name])
        assert got.returncode == 0, f"n1 -> {name} ({ips[name]}): {got.stdout}"


def test_nat_nodes_reach_each_other_over_the_overlay_through_the_relay(cluster: Sandbox) -> None:
    ips = overlay_ips(cluster)
    got = cluster.exec("n3", "ping", "-c", "1", "-W", "2", ips["n4"])
    assert got.returncode == 0, got.stdout

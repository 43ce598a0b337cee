"""Prometheus through the server on the sandbox: with one metrics-role token, the cluster's
metrics and every agent's (NAT'd ones too, relayed over the overlay) from the server's address."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.helpers import Sandbox


@pytest.fixture(scope="module")
def prometheus(cluster: Sandbox) -> Iterator[httpx.Client]:
    made = cluster.shoal_json("token", "create", "--role", "metrics", "--name", "e2e-prometheus")
    headers = {"Authorization": f"Bearer {made['token']}"}
    try:
        with httpx.Client(
            base_url=cluster.status["server"], verify=cluster.status["ca"], headers=headers
        ) as c:
            yield c
    finally:
        cluster.shoal("token", "rm", str(made["id"]))


def _names(text: str) -> set[str]:
    return {family.name for family in text_string_to_metric_families(text)}


def test_cluster_metrics_count_every_node_ready(prometheus: httpx.Client, cluster: Sandbox) -> None:
    got = prometheus.get("/api/v1/metrics")
    assert got.status_code == 200, got.text
    assert f'shoal_nodes{{state="ready"}} {float(len(cluster.status["nodes"]))}' in got.text
    assert "shoal_leader 1.0" in got.text


def test_every_agents_metrics_come_through_the_server(prometheus: httpx.Client, cluster: Sandbox) -> None:
    for node in cluster.status["nodes"]:
        got = prometheus.get(f"/api/v1/nodes/{node['name']}/metrics")
        assert got.status_code == 200, (node["name"], got.text)
        assert "shoal_agent_containers" in _names(got.text)
    assert prometheus.get("/api/v1/services").status_code == 403

"""The cluster's metrics from store rows, and the scrape config Prometheus is given."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from ruamel.yaml import YAML

from shoal.control.cluster_metrics import exposition, scrape_config


def _samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


def node(name: str, down: bool = False, availability: str = "active") -> dict[str, Any]:
    return {"name": name, "down": down, "availability": availability}


def task(service: str, observed: str, desired: str = "run") -> dict[str, Any]:
    return {"service": service, "observed_state": observed, "desired_state": desired}


def test_nodes_replicas_rollouts_and_leadership_are_counted() -> None:
    nodes = [node("a"), node("b", down=True), node("c", availability="drain"), node("d")]
    services = [{"name": "shop.web", "rollout_state": "updating"}]
    tasks = [task("shop.web", "running"), task("shop.web", "running"), task("shop.web", "failed")]
    tasks.append(task("shop.web", "running", desired="stop"))  # leaving: not counted
    got = _samples(exposition(nodes, services, tasks, True, 42))
    assert got[("shoal_nodes", (("state", "ready"),))] == 2
    assert got[("shoal_nodes", (("state", "down"),))] == 1
    assert got[("shoal_nodes", (("state", "draining"),))] == 1
    running = (("project", "shop"), ("service", "web"), ("state", "running"))
    assert got[("shoal_replicas", running)] == 2
    assert got[("shoal_replicas", (("project", "shop"), ("service", "web"), ("state", "failed")))] == 1
    assert (
        got[("shoal_service_rollout", (("project", "shop"), ("service", "web"), ("state", "updating")))] == 1
    )
    assert got[("shoal_leader", ())] == 1 and got[("shoal_cluster_version", ())] == 42


def test_the_scrape_config_reaches_the_cluster_and_every_agent_through_the_server() -> None:
    text = scrape_config("https://shoal.example.com:7443", ["n1", "n2"], "/t", "/ca.crt")
    jobs = YAML(typ="safe").load(text)["scrape_configs"]
    assert [j["metrics_path"] for j in jobs] == [
        "/api/v1/metrics",
        "/api/v1/nodes/n1/metrics",
        "/api/v1/nodes/n2/metrics",
    ]
    assert {j["static_configs"][0]["targets"][0] for j in jobs} == {"shoal.example.com:7443"}
    assert jobs[1]["authorization"] == {"type": "Bearer", "credentials_file": "/t"}

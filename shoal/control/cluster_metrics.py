"""The cluster's state as Prometheus metrics (`GET /api/v1/metrics`), and a scrape config.

Built on each scrape from the store's rows into a registry of its own (nothing kept between
scrapes): nodes by state, replicas by project, service and state, each service's rollout state,
whether this server leads, and the cluster's state version. `scrape_config` is the Prometheus
configuration that scrapes it and every agent through this server (`/api/v1/nodes/<n>/metrics`),
with one metrics-role token: agents never need a port open to Prometheus.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlparse

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from shoal.control.store.nodes import state_of
from shoal.model.deploy_wire import split_qualified

Row = dict[str, Any]
NODE_STATES = ("ready", "draining", "down")


class _Snapshot(Collector):
    def __init__(
        self, nodes: Sequence[Row], services: Sequence[Row], tasks: Sequence[Row], leader: bool, version: int
    ) -> None:
        self.rows = (nodes, services, tasks)
        self.leader, self.version = leader, version

    def collect(self) -> Iterable[GaugeMetricFamily]:
        nodes, services, tasks = self.rows
        yield _nodes(nodes)
        yield _replicas(tasks)
        yield _rollouts(services)
        yield GaugeMetricFamily(
            "shoal_leader", "1 when this server's controller leads", value=int(self.leader)
        )
        yield GaugeMetricFamily("shoal_cluster_version", "the cluster's state version", value=self.version)


def _nodes(rows: Sequence[Row]) -> GaugeMetricFamily:
    family = GaugeMetricFamily("shoal_nodes", "nodes by state", labels=["state"])
    counts = Counter(state_of(r) for r in rows)
    for state in NODE_STATES:
        family.add_metric([state], counts[state])
    return family


def _replicas(rows: Sequence[Row]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "shoal_replicas",
        "replicas meant to run, by service and observed state",
        labels=["project", "service", "state"],
    )
    counts = Counter((r["service"], r["observed_state"]) for r in rows if r["desired_state"] == "run")
    for (name, state), count in sorted(counts.items()):
        family.add_metric([*split_qualified(name), state], count)
    return family


def _rollouts(rows: Sequence[Row]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "shoal_service_rollout",
        "1 for each service's current rollout state",
        labels=["project", "service", "state"],
    )
    for row in rows:
        family.add_metric([*split_qualified(row["name"]), row["rollout_state"]], 1)
    return family


def exposition(
    nodes: Sequence[Row], services: Sequence[Row], tasks: Sequence[Row], leader: bool, version: int
) -> bytes:
    """The text exposition of one snapshot of the store."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(nodes, services, tasks, leader, version))
    return generate_latest(registry)


def scrape_config(server_url: str, node_names: Sequence[str], token_file: str, ca_file: str) -> str:
    """A Prometheus `scrape_configs` list: the cluster, and each agent through the server."""
    target = urlparse(server_url).netloc
    jobs = [_job("shoal-cluster", "/api/v1/metrics", target, token_file, ca_file)]
    jobs += [
        _job(f"shoal-agent-{n}", f"/api/v1/nodes/{n}/metrics", target, token_file, ca_file)
        for n in node_names
    ]
    return "scrape_configs:\n" + "".join(jobs)


def _job(name: str, path: str, target: str, token_file: str, ca_file: str) -> str:
    return (
        f"  - job_name: {name}\n"
        f"    scheme: https\n"
        f"    metrics_path: {path}\n"
        f"    authorization: {{type: Bearer, credentials_file: {token_file}}}\n"
        f"    tls_config: {{ca_file: {ca_file}}}\n"
        f"    static_configs: [{{targets: ['{target}']}}]\n"
    )

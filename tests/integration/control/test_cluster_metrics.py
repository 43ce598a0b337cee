"""Cluster metrics against a real server: a metrics-role token reads them and nothing else."""

from __future__ import annotations

from tests.integration.control.helpers import join
from tests.support.server_fixtures import Server


def test_a_metrics_token_reads_the_cluster_metrics_and_nothing_else(server: Server) -> None:
    join(server, "m1")
    with server.client() as admin:
        made = admin.post("/api/v1/tokens", json={"role": "metrics", "name": "prometheus"})
        assert made.status_code == 200, made.text
    with server.client(made.json()["token"]) as prom:
        got = prom.get("/api/v1/metrics")
        assert got.status_code == 200
        assert 'shoal_nodes{state="ready"} 1.0' in got.text
        config = prom.get("/api/v1/metrics/scrape-config")
        assert config.status_code == 200 and "/api/v1/nodes/m1/metrics" in config.text
        refused = prom.get("/api/v1/nodes")
        assert refused.status_code == 403
        assert refused.json()["error"] == "this needs the viewer role; the token has metrics"
    # Each agent's metrics through the server: tests/e2e/test_metrics.py (an agent on the overlay).


def test_the_scrape_config_takes_plain_paths_only(server: Server) -> None:
    with server.client() as admin:
        got = admin.get("/api/v1/metrics/scrape-config", params={"token_file": "/x\n  - job_name: evil"})
    assert got.status_code == 400
    assert got.json()["error"] == "token_file: a path of letters, digits and ._/- only"

"""`shoal service exec` and `shoal service logs` reach replicas on every node, NAT'd ones too:
the server relays to each agent over the WireGuard overlay. Also the API through the ingress."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.helpers import Sandbox, wait_for

SERVICE = "wl"


def _compose(registry: str) -> str:
    return (
        "services:\n"
        f"  {SERVICE}:\n"
        f"    image: {registry}/example/hello:latest\n"
        "    deploy:\n"
        "      replicas: 4\n"
    )


def _tasks(cluster: Sandbox) -> list[dict[str, object]]:
    return [t for t in cluster.shoal_json("ps") if t["service"] == SERVICE]


@pytest.fixture(scope="module")
def workload(cluster: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    compose = tmp_path_factory.mktemp("wl") / "compose.yaml"
    compose.write_text(_compose(cluster.status["registry"]))
    got = cluster.shoal("deploy", "-f", str(compose), "--project", "wl", timeout=300)
    assert got.returncode == 0, got.stderr or got.stdout
    try:
        yield cluster
    finally:
        cluster.shoal("service", "rm", SERVICE)


def test_exec_runs_in_the_chosen_replica_and_returns_its_exit_code(workload: Sandbox) -> None:
    tasks = {int(str(t["replica"])): t for t in _tasks(workload)}
    for replica in tasks:
        got = workload.shoal("service", "exec", SERVICE, "--replica", str(replica), "--", "hostname")
        assert got.returncode == 0, got.stderr
        assert got.stdout.strip() == f"{SERVICE}-{replica}"
    failing = workload.shoal("service", "exec", SERVICE, "--", "sh", "-c", "exit 7")
    assert failing.returncode == 7


def test_logs_merge_every_replica_with_its_prefix(workload: Sandbox) -> None:
    replicas = {int(str(t["replica"])) for t in _tasks(workload)}
    nat_nodes = {n["name"] for n in workload.status["nodes"] if n["nat"]}
    assert nat_nodes & {str(t["node"]) for t in _tasks(workload)}, "no replica on a NAT'd node"

    def every_replica_logged() -> bool:
        lines = workload.shoal("service", "logs", SERVICE).stdout.splitlines()
        started = f"hello: {SERVICE}-{{}} serving on port 8080"
        return all(any(ln.startswith(f"{r}| ") and started.format(r) in ln for ln in lines) for r in replicas)

    wait_for(every_replica_logged, 30, "the example app's start line from every replica")


def test_api_and_ui_are_published_through_the_ingress(workload: Sandbox) -> None:
    status = workload.status
    ingress = next(n["address"] for n in status["nodes"] if n["ingress"])
    wait_for(lambda: "ingress_ca" in json.loads(workload.run("status", "--output", "json").stdout), 60, "CA")
    ca = json.loads(workload.run("status", "--output", "json").stdout)["ingress_ca"]
    host = "shoal.sandbox.test"
    url = f"https://{host}/api/v1/health"
    curl = ["curl", "-sf", "--cacert", ca, "--resolve", f"{host}:443:{ingress}", url]

    def answers() -> bool:
        done = subprocess.run(curl, capture_output=True, text=True, check=False)
        return done.returncode == 0 and json.loads(done.stdout).get("ok") is True

    wait_for(answers, 60, "the API's health through the ingress")
    login = subprocess.run([*curl[:-1], f"https://{host}/login"], capture_output=True, text=True, check=False)
    assert "Sign in to shoal" in login.stdout
    assert Path(ca).exists()

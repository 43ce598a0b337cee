"""Issue 15: "deployed" means "served", end to end on the sandbox.

A service of its own (`served`, four replicas, no health check: a replica serves once it runs)
with an ingress host. The moment `shoal deploy` returns, (1) every node's DNS server (queried
with busybox nslookup inside the node, at its bridge address) lists all four replicas, and (2) a
request loop through the ingress node started right then gets nothing but 200s and reaches every
replica. The service is removed at the end.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.e2e.helpers import Sandbox

PROJECT = SERVICE = "served"
HOST = "served.sandbox.test"
NAME = f"{SERVICE}.{PROJECT}.shoal.internal"
REQUESTS = 120
SNI = {"sni_hostname": HOST}
COMPOSE = """
services:
  served:
    image: {registry}/example/hello:latest
    environment:
      PORT: "8080"
    deploy:
      replicas: 4
    x-shoal:
      ingress:
        host: {host}
        port: 8080
"""


@pytest.fixture(scope="module")
def compose(cluster: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("served") / "compose.yaml"
    path.write_text(COMPOSE.format(registry=cluster.status["registry"], host=HOST))
    try:
        yield path
    finally:
        cluster.shoal("project", "rm", PROJECT)


def bridge_ips(cluster: Sandbox) -> dict[str, str]:
    """Node → the address its DNS server answers on (the first of its subnet: the bridge)."""
    nodes = cluster.shoal_json("node", "ls")
    return {n["name"]: str(next(ipaddress.ip_network(n["subnet"]).hosts())) for n in nodes}


def lookup(netns: str, server: str) -> set[str]:
    """The addresses a node's own DNS server gives for the service's name (busybox nslookup in
    the node's network namespace: milliseconds, where `sandbox exec` would take a Python start)."""
    argv = ["nsenter", f"--net=/run/netns/{netns}", "busybox", "nslookup", NAME, server]
    got = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    lines = got.stdout.split("Name:", 1)[-1].splitlines()
    return {line.split()[-1] for line in lines if line.strip().startswith("Address")}


def request_loop(address: str, hits: list[tuple[int, str]]) -> None:
    """REQUESTS requests through the ingress, one after another on fresh connections (each one a
    new handshake and a new pick of upstream); (status, body or error) each."""
    for _ in range(REQUESTS):
        try:
            with httpx.Client(verify=False, timeout=10) as client:  # the certificate is not the point
                resp = client.get(
                    f"https://{address}/", headers={"Host": HOST}, extensions={"sni_hostname": HOST}
                )
            hits.append((resp.status_code, resp.text.strip()[:80]))
        except httpx.HTTPError as exc:
            hits.append((0, f"{type(exc).__name__}: {exc}"))


def test_dns_and_ingress_serve_every_replica_when_deploy_returns(cluster: Sandbox, compose: Path) -> None:
    ips = bridge_ips(cluster)
    netns = {n["name"]: n["netns"] for n in cluster.status["nodes"]}
    ingress = next(n for n in cluster.status["nodes"] if n["ingress"])
    hits: list[tuple[int, str]] = []
    loop = threading.Thread(target=request_loop, args=(ingress["address"], hits))
    deployed = cluster.shoal("deploy", "-f", str(compose), "-p", PROJECT, timeout=300)
    returned = time.monotonic()
    loop.start()
    with ThreadPoolExecutor(len(ips)) as pool:
        answers = dict(zip(ips, pool.map(lambda n: lookup(netns[n], ips[n]), ips), strict=True))
    took = time.monotonic() - returned
    loop.join(timeout=120)
    assert deployed.returncode == 0, deployed.stderr
    replicas = {t["ip"] for t in cluster.shoal_json("ps") if t["service"] == SERVICE}
    assert len(replicas) == 4
    assert {n: a for n, a in answers.items() if a != replicas} == {}, f"{took:.2f}s after deploy: {answers}"
    failed = [h for h in hits if h[0] != 200]
    assert not failed, f"{len(failed)} of {len(hits)} failed: {failed[:5]}"
    answered = {body.split("hello from", 1)[-1].split("<", 1)[0].strip() for _, body in hits}
    assert answered == {f"{SERVICE}-{r}" for r in range(1, 5)}, answered


def test_the_deploy_said_it_waited_for_serving(cluster: Sandbox, compose: Path) -> None:
    got = cluster.shoal("deploy", "-f", str(compose), "-p", PROJECT, "--output", "json", timeout=300)
    assert got.returncode == 0, got.stderr
    answer = json.loads(got.stdout)
    assert answer["healthy"] and answer["served"] and answer["lagging"] == []

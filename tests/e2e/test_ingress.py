"""Issue 6's ingress end to end: HTTPS at the ingress node, answered by replicas across the mesh.

A service of its own (`ingtest`, four replicas, so one per node: two of them NAT'd) with an
`x-shoal.ingress` host; requests go from the host to the ingress node's underlay address with the
route's host (SNI and Host), verified against the sandbox's `ingress_ca`. The page names the
replica's hostname (`ingtest-<replica>`), which `shoal ps` maps to a node. Load is bounded (a few
hundred requests, to the ingress node only). The service is removed at the end.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from shoal.agent.sys.caddy import CaddyAdmin
from shoal.sandbox import state
from shoal.sandbox.nodes import node_dir
from shoal.sandbox.teardown import runc_containers
from tests.e2e.helpers import Sandbox, wait_for

SERVICE = "ingtest"
HOST = "ingtest.sandbox.test"
ADMIN_SOCKET = "run/shoal/caddy/admin.sock"  # the agent's default, under the ingress node's root
COMPOSE = """
services:
  ingtest:
    image: {registry}/example/hello:latest
    environment:
      PORT: "8080"
      GREETING: "{greeting}"
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/health"]
      interval: 1s
      timeout: 2s
      retries: 2
      start_period: 1s
    deploy:
      replicas: 4
      restart_policy: {{condition: any, delay: 1s}}
      update_config: {{order: start-first, parallelism: 1, delay: 1s}}
    x-shoal:
      ingress:
        host: {host}
        port: 8080
"""


@dataclass(frozen=True)
class Hit:
    at: float  # time.monotonic() when the answer (or the error) came
    ok: bool
    replica: str  # the hostname the page names; the error when not ok


@dataclass
class Ingress:
    """The route as a client sees it: the ingress node's address and the root to verify with."""

    cluster: Sandbox
    node: str
    address: str
    ca: str

    def client(self) -> httpx.Client:
        return httpx.Client(verify=ssl.create_default_context(cafile=self.ca), timeout=10)

    def get(self, client: httpx.Client) -> Hit:
        ext = {"sni_hostname": HOST}
        try:
            try:
                resp = client.get(f"https://{self.address}/", headers={"Host": HOST}, extensions=ext)
            except httpx.RemoteProtocolError:
                # Caddy closes idle keep-alive connections when it loads a new config; a GET sent
                # on one as it closes is retried on a new connection, as browsers and Go's
                # net/http retry it (httpx does not). A request Caddy took and failed is not.
                resp = client.get(f"https://{self.address}/", headers={"Host": HOST}, extensions=ext)
        except httpx.HTTPError as exc:
            return Hit(time.monotonic(), False, f"{type(exc).__name__}: {exc}")
        if resp.status_code != 200:
            return Hit(time.monotonic(), False, f"HTTP {resp.status_code}: {resp.text.strip()[:80]}")
        return Hit(time.monotonic(), True, page_replica(resp.text))

    def curl(self, *args: str, scheme: str = "https") -> subprocess.CompletedProcess[str]:
        port = 443 if scheme == "https" else 80
        argv = ["curl", "-sS", "--max-time", "10", "--cacert", self.ca]
        argv += ["--resolve", f"{HOST}:{port}:{self.address}", *args, f"{scheme}://{HOST}/"]
        return subprocess.run(argv, capture_output=True, text=True, check=False)

    def upstreams(self) -> set[str]:
        """The dial addresses Caddy on the ingress node currently has for the route."""
        holder = state.load(self.cluster.dir).node(self.node).holder_pid
        admin = CaddyAdmin(Path(f"/proc/{holder}/root") / ADMIN_SOCKET)
        try:
            config = admin.get_config() or {}
        finally:
            admin.close()
        return route_upstreams(config)


def page_replica(page: str) -> str:
    """`<h1>hello from ingtest-3</h1>` → `ingtest-3`."""
    return page.split("hello from", 1)[-1].split("<", 1)[0].strip()


def route_upstreams(config: dict[str, Any]) -> set[str]:
    servers = config.get("apps", {}).get("http", {}).get("servers", {})
    dials: set[str] = set()
    for server in servers.values():
        for route in server.get("routes", []):
            if any(HOST in m.get("host", []) for m in route.get("match", [])):
                dials |= {u["dial"] for h in route["handle"] for u in h.get("upstreams", [])}
    return dials


@dataclass
class Load:
    """Bounded background load: ``workers`` keep-alive clients, each ``per_worker`` requests at most."""

    ingress: Ingress
    workers: int = 2
    per_worker: int = 200
    pause_s: float = 0.02
    hits: list[Hit] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        self._threads = [threading.Thread(target=self._run) for _ in range(self.workers)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self) -> None:
        with self.ingress.client() as client:
            for _ in range(self.per_worker):
                if self._stop.is_set():
                    return
                self.hits.append(self.ingress.get(client))
                time.sleep(self.pause_s)

    def failures(self, after: float = 0.0) -> list[Hit]:
        return [h for h in self.hits if not h.ok and h.at >= after]


def tasks(cluster: Sandbox) -> list[dict[str, Any]]:
    return [t for t in cluster.shoal_json("ps") if t["service"] == SERVICE]


def healthy(cluster: Sandbox, count: int) -> bool:
    got = tasks(cluster)
    return len(got) == count and all(t["state"] == "running" and t["health"] == "healthy" for t in got)


def deploy(cluster: Sandbox, directory: Path, greeting: str) -> str:
    """`shoal deploy` of the service with GREETING set (a new value makes a new revision)."""
    compose = directory / f"ingtest-{greeting}.yaml"
    compose.write_text(COMPOSE.format(registry=cluster.status["registry"], greeting=greeting, host=HOST))
    got = cluster.shoal("deploy", "-f", str(compose), "--project", SERVICE, timeout=300)
    assert got.returncode == 0, got.stderr or got.stdout
    return got.stdout


def ingress_ca(cluster: Sandbox) -> str:
    status = json.loads(cluster.run("status", "--output", "json").stdout)
    return str(status.get("ingress_ca", ""))


@pytest.fixture(scope="module")
def ingress(cluster: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingress]:
    node = next(n for n in cluster.status["nodes"] if n["ingress"])
    try:
        deploy(cluster, tmp_path_factory.mktemp("ingtest"), "v1")
        wait_for(lambda: healthy(cluster, 4), 120, f"4 healthy replicas of {SERVICE}")
        wait_for(lambda: bool(ingress_ca(cluster)), 60, "ingress_ca in `sandbox status`")
        route = Ingress(cluster, node["name"], node["address"], ingress_ca(cluster))
        wait_for(lambda: route.curl().stdout.startswith("<h1>hello"), 60, "the page through the ingress")
        # Caddy takes each replica as the ingress node hears it is healthy; every load swaps its
        # listening socket (SO_REUSEPORT), and a connection queued on the old one is reset. The
        # tests start once the route holds all four, so no load of this deploy overlaps them.
        wait_for(lambda: route.upstreams() == replica_dials(cluster), 30, "all 4 replicas in Caddy")
        yield route
    finally:
        cluster.shoal("service", "rm", SERVICE)


def replica_dials(cluster: Sandbox) -> set[str]:
    """The overlay ``ip:port`` of every running replica, as Caddy dials them."""
    return {f"{t['ip']}:8080" for t in tasks(cluster) if t["state"] == "running"}


def replica_nodes(cluster: Sandbox) -> dict[str, str]:
    """Hostname (`ingtest-<replica>`) → node of the running replicas."""
    return {f"{SERVICE}-{t['replica']}": t["node"] for t in tasks(cluster) if t["state"] == "running"}


def test_https_verified_and_answered_by_replicas_on_nat_and_public_nodes(ingress: Ingress) -> None:
    pages = [ingress.curl("--fail-with-body") for _ in range(12)]
    failed = [f"curl {p.returncode}: {p.stderr.strip()} {p.stdout[:80]}" for p in pages if p.returncode]
    assert not failed, failed
    where = replica_nodes(ingress.cluster)
    nodes = {where[page_replica(p.stdout)] for p in pages}
    nat = {n["name"] for n in ingress.cluster.status["nodes"] if n["nat"]}
    assert len(nodes) >= 2, f"answered only from {nodes}"
    assert nodes & nat, f"no NAT'd node ({sorted(nat)}) among {sorted(nodes)}"
    unverified = subprocess.run(
        ["curl", "-s", "--resolve", f"{HOST}:443:{ingress.address}", f"https://{HOST}/"], check=False
    )
    assert unverified.returncode != 0, "the ingress certificate verified without the sandbox's root"


def test_http_redirects_to_https(ingress: Ingress) -> None:
    got = ingress.curl("-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", scheme="http")
    code, _, location = got.stdout.partition(" ")
    assert code in ("301", "302", "307", "308"), got.stdout
    assert location == f"https://{HOST}/"


def test_scaled_up_replica_gets_traffic_within_2s(ingress: Ingress) -> None:
    cluster = ingress.cluster
    before = set(replica_nodes(cluster))
    assert cluster.shoal("service", "scale", f"{SERVICE}=5").returncode == 0
    try:
        wait_for(lambda: healthy(cluster, 5), 60, "the fifth replica healthy")
        (new,) = set(replica_nodes(cluster)) - before
        with ingress.client() as client:  # a round of round robin per check
            took = wait_for(lambda: new in burst(ingress, client, 6), 10, f"traffic to {new}")
        assert took <= 2.0, f"{new} got its first request {took:.1f}s after it was healthy"
    finally:
        assert cluster.shoal("service", "scale", f"{SERVICE}=4").returncode == 0
        wait_for(lambda: healthy(cluster, 4), 60, "scaled back to 4")


def burst(ingress: Ingress, client: httpx.Client, count: int) -> set[str]:
    """The replicas that answer ``count`` requests in a row."""
    return {ingress.get(client).replica for _ in range(count)}


def runc_roots(cluster: Sandbox, node: str) -> set[str]:
    """The runc roots under a node's /run (wherever the agent keeps them)."""
    holder = state.load(cluster.dir).node(node).holder_pid
    return {root for root, _ in runc_containers(Path(f"/proc/{holder}/root/run"))}


def runc_kill(cluster: Sandbox, node: str, prefix: str) -> None:
    """SIGKILL the node's running container whose id starts with ``prefix`` (runc, in the node)."""
    for root in runc_roots(cluster, node):
        listed = json.loads(
            cluster.exec(node, "runc", "--root", root, "list", "--format", "json").stdout or "[]"
        )
        for c in listed or []:
            if c["id"].startswith(prefix) and c["status"] == "running":
                got = cluster.exec(node, "runc", "--root", root, "kill", c["id"], "KILL")
                assert got.returncode == 0, got.stderr
                return
    raise AssertionError(f"no running container {prefix}* on {node}")


def test_killed_replica_fails_no_request_after_it_is_dropped(ingress: Ingress) -> None:
    cluster = ingress.cluster
    victim = next(t for t in tasks(cluster) if t["node"] != ingress.node)
    dial = f"{victim['ip']}:8080"
    assert dial in ingress.upstreams()
    with Load(ingress, per_worker=300, pause_s=0.05) as load:
        time.sleep(1)
        runc_kill(cluster, victim["node"], victim["id"])
        wait_for(lambda: dial not in ingress.upstreams(), 30, f"{dial} dropped from Caddy")
        dropped = time.monotonic()
        time.sleep(2)
    late = load.failures(after=dropped)
    assert not late, f"{len(late)}/{len(load.hits)} failed after the drop, first: {late[0].replica}"
    assert load.hits[-1].at > dropped + 1, "the load did not outlast the drop"
    wait_for(lambda: healthy(cluster, 4), 60, "the killed replica replaced")


def test_rolling_update_under_load_fails_no_request(ingress: Ingress, tmp_path: Path) -> None:
    cluster = ingress.cluster
    with Load(ingress, per_worker=300, pause_s=0.04) as load:
        out = deploy(cluster, tmp_path, "v2")
        done = time.monotonic()
        time.sleep(1)
    assert "(revision 2)" in out, out
    assert load.hits and load.hits[-1].at >= done, "the load ended before the update did"
    failed = load.failures()
    assert not failed, f"{len(failed)}/{len(load.hits)} failed, first: {failed[0].replica}"
    assert healthy(cluster, 4)


def _key_line(key_file: Path) -> bytes:
    """One full base64 line of a PEM key: found in any copy of it, raw or JSON-escaped."""
    return key_file.read_bytes().splitlines()[1]


def _files_under(top: Path, skip: set[Path]) -> Iterator[Path]:
    for where, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if Path(where, d) not in skip]
        for name in files:
            path = Path(where, name)
            if path.is_file() and not path.is_symlink() and path.stat().st_size < (4 << 20):
                yield path


def test_the_ingress_node_holds_no_ingress_root_key(ingress: Ingress) -> None:
    """Neither the ingress node's data dir nor its /run/shoal (the agent's tmpfs, Caddy's) holds the
    root's private key: Caddy signs with the node's own intermediate (only a server's own data dir,
    when a server runs on that node, holds the root's key)."""
    root = Path(ingress.cluster.dir)
    server_key = next(root.glob("nodes/*/server/ingress-ca.key"))
    line = _key_line(server_key)
    data_dir = node_dir(root, ingress.node)
    holder = state.load(ingress.cluster.dir).node(ingress.node).holder_pid
    node_run = Path(f"/proc/{holder}/root/run/shoal")
    scanned = [*_files_under(data_dir, {data_dir / "server"}), *_files_under(node_run, set())]
    assert any(p.name.startswith("intermediate-") for p in scanned)
    assert not [p for p in scanned if line in _read(p)]


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # gone since the walk (a replica's files), or not readable as a file
        return b""

"""The ingress reconciler against a real Caddy in a throwaway network namespace.

Upstreams are small Python HTTP servers in the same namespace; clients are curl run inside it,
verifying the certificate against the cluster's own root.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shoal.agent.net.nsthread import in_netns
from shoal.agent.reconcilers.ingress import IngressConfig, IngressReconciler
from shoal.agent.render.caddy import CaddyPorts
from shoal.agent.sys.caddy import serves_tls
from shoal.control import pki
from shoal.model.state import IngressRoute, IngressSettings, NodeState

UPSTREAM = r"""
import http.server, sys
name, port = sys.argv[1], int(sys.argv[2])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"{name} xff={self.headers.get('X-Forwarded-For', '')}\n".encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
"""


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"shg-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def _in_ns(ns: str) -> list[str]:
    return ["nsenter", f"--net=/run/netns/{ns}"]


@pytest.fixture
def upstreams(netns: str) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    procs = {
        name: subprocess.Popen([*_in_ns(netns), sys.executable, "-c", UPSTREAM, name, str(port)])
        for name, port in (("one", 18081), ("two", 18082))
    }
    try:
        for port in (18081, 18082):
            _wait_port(netns, port)
        yield procs
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait()


def _wait_port(ns: str, port: int) -> None:
    for _ in range(100):
        if _curl(ns, f"http://127.0.0.1:{port}/", check=False)[0] == 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"upstream on {port} never answered")


@dataclass
class Server:
    """The server's side of the ingress CA: the root (cert and key, outside the node's dirs) and
    the signing the API does; `days` and `calls` let a test see renewals."""

    root_cert: Path
    root_key: Path
    days: int = pki.INTERMEDIATE_DAYS
    calls: int = 0

    def sign(self, csr_pem: str) -> str:
        self.calls += 1
        return pki.sign_intermediate(self.root_cert, self.root_key, csr_pem, "n1", self.days)


@pytest.fixture
def server(tmp_path: Path) -> Server:
    (tmp_path / "server").mkdir()
    cert, key = tmp_path / "server" / "ingress-ca.crt", tmp_path / "server" / "ingress-ca.key"
    pki.make_ca(cert, key, "shoal test ingress root", path_length=1)
    return Server(cert, key)


@pytest.fixture
def ingress(
    netns: str, tmp_path: Path, server: Server
) -> Iterator[tuple[IngressReconciler, IngressSettings, Path]]:
    settings = IngressSettings(tls="internal", ca_cert_pem=server.root_cert.read_text())
    config = IngressConfig(
        state_dir=tmp_path / "caddy",
        admin_socket=tmp_path / "run" / "caddy-admin.sock",  # a dir Caddy start must make
        node="n1",
        ports=CaddyPorts(http=80, https=443),
        argv_prefix=tuple(_in_ns(netns)),
        netns=Path(f"/run/netns/{netns}"),
    )
    reconciler = IngressReconciler(config, server.sign)
    try:
        yield reconciler, settings, server.root_cert
    finally:
        reconciler.remove()


def _state(settings: IngressSettings, upstreams: list[str]) -> NodeState:
    route = IngressRoute(service="web", host="app.test", upstreams=upstreams)
    return NodeState(node="n1", subnet="10.210.1.0/24", ingress=[route], ingress_settings=settings)


def _curl(ns: str, url: str, *extra: str, check: bool = True) -> tuple[int, str]:
    argv = [*_in_ns(ns), "curl", "-sS", "--max-time", "10", *extra, url]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"curl {url}: {done.stderr.strip()}")
    return done.returncode, done.stdout


TLS_HANDSHAKE_FAILED = 35  # curl's exit code


def _https(ns: str, root: Path, check: bool = True) -> tuple[int, str]:
    resolve = ("--resolve", "app.test:443:127.0.0.1")
    return _curl(ns, "https://app.test/", "--cacert", str(root), *resolve, check=check)


def _https_body(ns: str, root: Path) -> str:
    return _https(ns, root)[1]


def _first_https(ns: str, root: Path, timeout_s: float = 15.0) -> None:
    """Waits for the site's certificate: Caddy issues it after its config loads, and a handshake
    before that ends in a TLS alert. Any other failure is raised at once."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        code = _https(ns, root, check=False)[0]
        if code == 0:
            return
        if code != TLS_HANDSHAKE_FAILED:
            _https(ns, root)  # raises with curl's message
        time.sleep(0.1)
    raise AssertionError(f"no certificate for app.test within {timeout_s:.0f}s")


def test_https_route_balances_over_replicas_and_verifies(netns, upstreams, ingress) -> None:
    reconciler, settings, root = ingress
    plan = reconciler.reconcile(_state(settings, ["127.0.0.1:18081", "127.0.0.1:18082"]))
    assert plan.action == "start"
    _first_https(netns, root)
    bodies = {_https_body(netns, root).split()[0] for _ in range(8)}
    assert bodies == {"one", "two"}
    assert "xff=127.0.0.1" in _https_body(netns, root)


def test_http_redirects_to_https(netns, upstreams, ingress) -> None:
    reconciler, settings, _ = ingress
    reconciler.reconcile(_state(settings, ["127.0.0.1:18081"]))
    out = _curl(
        netns,
        "http://app.test/",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{redirect_url}",
        "--resolve",
        "app.test:80:127.0.0.1",
    )[1]
    code, location = out.split()
    assert code in {"301", "302", "308"} and location == "https://app.test/"


def test_unchanged_state_loads_nothing_and_changes_load_once(netns, upstreams, ingress) -> None:
    reconciler, settings, root = ingress
    reconciler.reconcile(_state(settings, ["127.0.0.1:18081", "127.0.0.1:18082"]))
    _first_https(netns, root)
    assert reconciler.reconcile(_state(settings, ["127.0.0.1:18081", "127.0.0.1:18082"])).action == "none"
    assert reconciler.loads == 1
    assert reconciler.reconcile(_state(settings, ["127.0.0.1:18082"])).action == "load"
    assert reconciler.loads == 2
    assert {_https_body(netns, root).split()[0] for _ in range(6)} == {"two"}


def test_a_new_agent_adopts_the_running_caddy(netns, upstreams, ingress) -> None:
    reconciler, settings, _ = ingress
    state = _state(settings, ["127.0.0.1:18081"])
    reconciler.reconcile(state)
    pid = reconciler.process.pid()
    fresh = IngressReconciler(reconciler.config)
    assert fresh.reconcile(state).action == "none"
    assert fresh.process.pid() == pid


def test_a_replica_killed_under_load_fails_no_request(netns, upstreams, ingress) -> None:
    reconciler, settings, root = ingress
    reconciler.reconcile(_state(settings, ["127.0.0.1:18081", "127.0.0.1:18082"]))
    _first_https(netns, root)
    os.kill(upstreams["one"].pid, signal.SIGKILL)
    upstreams["one"].wait()
    answers = [_https_body(netns, root).split()[0] for _ in range(10)]
    assert answers == ["two"] * 10


def test_no_ingress_settings_means_no_caddy(netns, ingress) -> None:
    reconciler, settings, _ = ingress
    reconciler.reconcile(_state(settings, []))
    assert reconciler.process.pid() is not None
    plan = reconciler.reconcile(NodeState(node="n1", subnet="10.210.1.0/24"))
    assert plan.action == "stop"
    assert reconciler.process.pid() is None
    assert json.loads(json.dumps(plan.config)) is None


def _sysctl(ns: str, key: str) -> str:
    got = subprocess.run([*_in_ns(ns), "sysctl", "-n", key], capture_output=True, text=True, check=True)
    return got.stdout.strip()


def _listening_inode(ns: str, port: int) -> str:
    argv = [*_in_ns(ns), "ss", "-Hltne", f"sport = :{port}"]
    got = subprocess.run(argv, capture_output=True, text=True, check=True)
    return next(f for f in got.stdout.split() if f.startswith("ino:"))


def test_every_start_and_load_lets_the_kernel_migrate_queued_connections(netns, upstreams, ingress) -> None:
    reconciler, settings, root = ingress
    reconciler.reconcile(_state(settings, ["127.0.0.1:18081", "127.0.0.1:18082"]))
    _first_https(netns, root)
    assert _sysctl(netns, "net.ipv4.tcp_migrate_req") == "1"
    before = _listening_inode(netns, 443)
    subprocess.run([*_in_ns(netns), "sysctl", "-qw", "net.ipv4.tcp_migrate_req=0"], check=True)
    assert reconciler.reconcile(_state(settings, ["127.0.0.1:18082"])).action == "load"
    assert _sysctl(netns, "net.ipv4.tcp_migrate_req") == "1"
    # Why it matters: the load put Caddy on a new listening socket and closed the old one.
    assert _listening_inode(netns, 443) != before


QUEUED = r"""
import socket, sys
def listener():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(("127.0.0.1", 18090)); s.listen(64)
    return s
old, new = listener(), listener()
clients = [socket.create_connection(("127.0.0.1", 18090)) for _ in range(32)]
old.close()  # with connections still queued on it, as Caddy's old socket after a load
new.settimeout(0.5)
accepted = 0
try:
    while True:
        new.accept()[0].close(); accepted += 1
except TimeoutError:
    pass
print(accepted)
"""


@pytest.mark.parametrize(("migrate", "all_kept"), [("1", True), ("0", False)])
def test_closing_a_reuseport_socket_keeps_its_queue_only_with_migrate_req(
    netns: str, migrate: str, all_kept: bool
) -> None:
    subprocess.run([*_in_ns(netns), "sysctl", "-qw", f"net.ipv4.tcp_migrate_req={migrate}"], check=True)
    argv = [*_in_ns(netns), sys.executable, "-c", QUEUED]
    got = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert got.returncode == 0, got.stderr
    assert (int(got.stdout) == 32) is all_kept, f"{got.stdout.strip()} of 32 accepted (migrate_req={migrate})"


def _handshakes(ns: str, host: str) -> bool:
    """A TLS handshake for `host` right now (in-process: no curl start-up delay lets Caddy catch up)."""
    return in_netns(Path(f"/run/netns/{ns}"), lambda: serves_tls(443, host))


def test_a_reconcile_ends_once_caddy_has_every_hosts_certificate(netns, upstreams, ingress) -> None:
    """Issue 15: a state the agent reports applied serves each of its hosts at once: right after
    the start, and after a load that adds a host, a handshake for it succeeds (no TLS alert)."""
    reconciler, settings, root = ingress
    state = _state(settings, ["127.0.0.1:18081"])
    reconciler.reconcile(state)
    assert _handshakes(netns, "app.test"), "no certificate for app.test after the start"
    extra = IngressRoute(service="api", host="api.test", upstreams=["127.0.0.1:18082"])
    bigger = state.model_copy(update={"ingress": [*state.ingress, extra]})
    assert reconciler.reconcile(bigger).action == "load"
    assert _handshakes(netns, "api.test"), "no certificate for api.test after the load"
    resolve = ("--resolve", "api.test:443:127.0.0.1", "--cacert", str(root))
    assert _curl(netns, "https://api.test/", *resolve)[1].startswith("two")


def _served_issuer(ns: str, root: Path) -> str:
    """The issuer of the leaf certificate Caddy serves for app.test, verified against `root`."""
    argv = [*_in_ns(ns), "openssl", "s_client", "-connect", "127.0.0.1:443", "-servername", "app.test"]
    argv += ["-CAfile", str(root), "-verify_return_error"]
    done = subprocess.run(argv, input="", capture_output=True, text=True, timeout=20, check=True)
    assert "Verify return code: 0 (ok)" in done.stdout
    return next(line for line in done.stdout.splitlines() if line.startswith("issuer="))


def test_caddy_signs_with_the_nodes_intermediate_and_holds_no_root_key(
    netns, upstreams, ingress, server, tmp_path
) -> None:
    reconciler, settings, root = ingress
    reconciler.reconcile(_state(settings, ["127.0.0.1:18081"]))
    _first_https(netns, root)
    assert "shoal ingress n1" in _served_issuer(netns, root)
    root_key_body = b"".join(server.root_key.read_bytes().splitlines()[1:-1])
    node_files = [p for p in (tmp_path / "caddy").rglob("*") if p.is_file()]
    assert node_files and not [p for p in node_files if root_key_body in p.read_bytes().replace(b"\n", b"")]
    running = reconciler.admin.running_config()
    assert running is not None and str(server.root_key) not in json.dumps(running)
    assert server.calls == 1
    assert reconciler.reconcile(_state(settings, ["127.0.0.1:18081"])).action == "none"
    assert server.calls == 1  # an intermediate with time left is kept


def test_an_intermediate_near_its_end_is_renewed_and_loaded(netns, upstreams, ingress, server) -> None:
    reconciler, settings, root = ingress
    server.days = 3  # less than RENEW_BEFORE left: the next pass asks again
    reconciler.reconcile(_state(settings, ["127.0.0.1:18081"]))
    _first_https(netns, root)
    server.days = pki.INTERMEDIATE_DAYS
    assert reconciler.reconcile(_state(settings, ["127.0.0.1:18081"])).action == "load"
    assert server.calls == 2
    assert len(list((reconciler.config.state_dir / "ca").glob("intermediate-*.crt"))) == 1
    assert _https_body(netns, root).split()[0] == "one"

"""An API that stays up for everyone (issue 19), against a real `shoal server` (Caddy in front,
two lanes behind it) and PostgreSQL: silent and half TLS handshakes, a viewer holding hundreds of
streams, oversized bodies and headers, hostile deploy files, made-up methods, audit events."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from shoal.control.config import ServerConfig
from tests.support.server_fixtures import FakeAgent, Server, shoal, tls

pytestmark = pytest.mark.integration
HOSTILE = sorted((Path(__file__).parents[2] / "unit" / "data" / "compose" / "hostile").glob("*.yaml"))
# the start of a TLS ClientHello record, and then nothing
HALF_HELLO = bytes.fromhex("160301020001000200fc0303") + b"\x00" * 16


def address(server: Server) -> tuple[str, int]:
    host, port = server.url.removeprefix("https://").rsplit(":", 1)
    return host, int(port)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@contextmanager
def nodes_heartbeating(server: Server, count: int = 3) -> Iterator[list[FakeAgent]]:
    agents = [FakeAgent(server, f"up{i}").start(poll_wait=25) for i in range(count)]
    try:
        yield agents
    finally:
        for agent in agents:
            agent.stop()


def assert_no_node_down(server: Server) -> None:
    with server.client() as admin:
        nodes = admin.get("/api/v1/nodes").json()
        kinds = [e["kind"] for e in admin.get("/api/v1/events", params={"limit": 1000}).json()]
    assert nodes and all(n["state"] == "ready" for n in nodes), nodes
    assert "node.down" not in kinds


def viewer_token(server: Server) -> str:
    with server.client() as admin:
        made = admin.post("/api/v1/tokens", json={"role": "viewer", "name": "watcher"})
    return str(made.json()["token"])


def cli_env(server: Server, token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
    return {**env, "SHOAL_SERVER": server.url, "SHOAL_TOKEN": token, "SHOAL_CACERT": server.ca}


def test_silent_and_half_tls_handshakes_stall_no_one(server: Server) -> None:
    with nodes_heartbeating(server), ExitStack() as held:
        for _ in range(20):
            held.enter_context(socket.create_connection(address(server)))
        for _ in range(5):
            half = held.enter_context(socket.create_connection(address(server)))
            half.sendall(HALF_HELLO)
        time.sleep(4.5)  # past the 3 s grace: every heartbeat meanwhile must have been served
        started = time.monotonic()
        listed = subprocess.run(
            shoal("node", "ls", "--output", "json"),
            env=cli_env(server, server.admin_token),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        took = time.monotonic() - started
        assert listed.returncode == 0, listed.stderr
        assert {n["name"] for n in json.loads(listed.stdout)} == {"up0", "up1", "up2"}
        assert took < 1.0, f"shoal node ls took {took:.2f}s"
        assert_no_node_down(server)


def open_stream(server: Server, token: str) -> tuple[ssl.SSLSocket, int, str]:
    """A raw event stream: the socket, its status and the first bytes of its body."""
    host, port = address(server)
    raw = socket.create_connection((host, port), timeout=10)
    sock = tls(server.ca).wrap_socket(raw, server_hostname=host)
    request = f"GET /api/v1/events/stream HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n"
    sock.sendall(request.encode())
    status, body = read_answer(sock)
    return sock, status, body


def read_answer(sock: ssl.SSLSocket) -> tuple[int, str]:
    """The status and, when it has a Content-Length, the body of the answer on `sock`."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if "content-length" in fields:
        while len(body) < int(fields["content-length"]):
            body += sock.recv(65536)
    return int(lines[0].split(" ", 2)[1]), body.decode(errors="replace")


def deploy_and_wait(server: Server, compose: str, timeout: float) -> float:
    started = time.monotonic()
    with server.client() as admin:
        answered = admin.post("/api/v1/deploy", json={"compose": compose, "project": "fair"})
        assert answered.status_code == 200, answered.text
        while time.monotonic() - started < timeout:
            service = admin.get("/api/v1/services/web").json()
            if service["running"] == 2:
                return time.monotonic() - started
            time.sleep(0.1)
    raise AssertionError(f"the deploy did not run within {timeout}s")


def test_a_viewer_holding_400_streams_delays_no_heartbeat_and_no_deploy(server: Server) -> None:
    token = viewer_token(server)
    cap = ServerConfig.model_fields["streams_per_principal"].default
    compose = "services:\n  web:\n    image: registry:5000/web:1\n    deploy:\n      replicas: 2\n"
    with nodes_heartbeating(server), ExitStack() as held:
        answers = []
        for _ in range(400):
            sock, status, body = open_stream(server, token)
            held.callback(sock.close)
            answers.append((status, body))
        assert [s for s, _ in answers].count(200) == cap
        refused = [b for s, b in answers if s == 429]
        assert len(refused) == 400 - cap
        error = json.loads(refused[0])["error"]
        assert "too many streams" in error and "\n" not in error
        assert deploy_and_wait(server, compose, timeout=10) < 10
        time.sleep(4.0)  # past the grace while the streams are held
        assert_no_node_down(server)
    # the streams' clients left: their slots come back within a second or two
    deadline = time.monotonic() + 5
    while True:
        sock, status, _ = open_stream(server, token)
        sock.close()
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status == 200


def raw_exchange(server: Server, head: str) -> tuple[int, str]:
    """Send only `head` (no body, whatever it announces) and read the answer."""
    host, port = address(server)
    with (
        socket.create_connection((host, port), timeout=10) as raw,
        tls(server.ca).wrap_socket(raw, server_hostname=host) as sock,
    ):
        sock.sendall(head.encode())
        return read_answer(sock)


@pytest.mark.parametrize("path", ["/api/v1/join", "/login", "/api/v1/nodes/x/labels"])
def test_a_2mb_body_is_refused_before_it_is_read(server: Server, path: str) -> None:
    """Only the head is sent: the 413 arrives although the 2 MB body never does."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: shoal\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {server.join_token}\r\nContent-Length: 2000000\r\n\r\n"
    )
    status, body = raw_exchange(server, head)
    assert status == 413
    assert "request body too large" in json.loads(body)["error"]


def test_oversized_headers_get_431(server: Server) -> None:
    with server.client() as admin:
        answer = admin.get("/api/v1/nodes", headers={"X-Padding": "a" * 200_000})
    assert answer.status_code == 431
    assert len(answer.text.strip().splitlines()) == 1


def test_hostile_deploy_files_are_refused_quickly_in_one_short_line(server: Server) -> None:
    assert server.proc is not None
    before = rss_mb(server.proc.pid)
    with server.client() as admin:
        for path in HOSTILE:
            started = time.monotonic()
            answer = admin.post("/api/v1/deploy", json={"compose": path.read_text(), "project": "p"})
            took = time.monotonic() - started
            assert answer.status_code == 400, (path.name, answer.text[:300])
            error = answer.json()["error"]
            assert len(error) < 300 and "\n" not in error, path.name
            assert took < 1.0, f"{path.name} took {took:.2f}s"
        assert admin.get("/api/v1/services").json() == []
    assert rss_mb(server.proc.pid) - before < 50


def test_made_up_methods_do_not_grow_the_metrics(server: Server) -> None:
    with server.client() as admin:
        for i in range(30):
            assert admin.request(f"BREW{i}", "/api/v1/nodes").status_code == 405
        metrics = admin.get("/metrics").text
    methods = {
        line.split('method="', 1)[1].split('"', 1)[0]
        for line in metrics.splitlines()
        if line.startswith("shoal_api_requests_total{")
    }
    assert "OTHER" in methods and not any(m.startswith("BREW") for m in methods)


def test_api_made_events_name_their_principal(server: Server) -> None:
    with server.client() as admin:
        me = admin.get("/api/v1/whoami").json()
        admin.post("/api/v1/tokens", json={"role": "viewer", "name": "audit"})
        FakeAgent(server, "audited")
        recent: list[dict[str, Any]] = admin.get("/api/v1/events", params={"limit": 50}).json()
    by_kind = {e["kind"]: e for e in recent}
    assert by_kind["token.created"]["principal"] == f"token {me['id']} ({me['name']})"
    assert by_kind["node.joined"]["principal"].startswith("join token ")


def test_the_sign_in_form_is_not_parsed_as_multipart(server: Server) -> None:
    with httpx.Client(base_url=server.url, verify=tls(server.ca)) as browser:
        answer = browser.post("/login", files={"token": ("t", b"x" * 1000)})
    assert answer.status_code == 415
    assert "multipart" in answer.json()["error"]

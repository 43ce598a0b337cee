"""Runs shoal on the sandbox's nodes: the server on n1 (n1..nN with `--servers N`, see
`servers.py`), then `join` and an agent on every node. Each node joins with a join token of its
own that grants what the sandbox wants it to be: ingress on ingress nodes, relay on public ones.

Last step of `shoal sandbox up` (after `build.py`). Each process runs inside its node through
the node's holder, detached, with its log under ``<dir>/logs/``; its pid goes into the record.
`up` returns once every node is ``ready`` in the API, or fails naming the node and process that
did not come up with the last lines of its log.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from shoal.client.contexts import ContextStore
from shoal.model.ports import WIREGUARD_PORT
from shoal.pids import alive
from shoal.sandbox import state
from shoal.sandbox.layout import NODE_STATE, PRIVATE_REGISTRY_PORT, REGISTRY_IP, SERVER_PORT
from shoal.sandbox.nodes import NodeError, enter, last_lines, node_dir, run_in, spawn
from shoal.sandbox.servers import join_servers, start_database
from shoal.sandbox.state import ProcessRecord, SandboxNode, SandboxState

SHOAL = [sys.executable, "-m", "shoal"]
SERVER_DATA = NODE_STATE / "server"
SERVER_START = [*SHOAL, "server", "start", "--data-dir", str(SERVER_DATA)]
AGENT_START = [*SHOAL, "agent", "start"]
PG_DIR = SERVER_DATA / "postgres"
CONTEXT = "sandbox"
# The cluster's ingress CA when the server hands one out, else Caddy's own internal CA.
SERVER_INGRESS_HOST = "shoal.sandbox.test"  # the API and web UI, published through the ingress
CADDY_ROOT_CERTS = (Path("caddy/ca/root.crt"), Path("caddy/storage/pki/authorities/local/root.crt"))


def host_path(root: Path, node: str, inside: str) -> Path:
    """Where a path under a node's /var/lib/shoal is seen from the host."""
    return node_dir(root, node) / Path(inside).relative_to(NODE_STATE)


def start_cluster(record: SandboxState, root: Path, timeout_s: float, servers: int = 1) -> None:
    """Servers on the first `servers` nodes, an agent on every node; waits until all are ready."""
    first = record.nodes[0]
    init = server_init(record, first, start_database(first) if servers > 1 else "")
    record.server, record.ca = init["url"], str(host_path(root, first.name, init["ca"]))
    start_process(record, root, first, "server", SERVER_START)
    wait_until(_healthy(record.server, record), timeout_s, record, root, "the server API never answered")
    record.servers = [record.server, *join_servers(record, root, servers, SHOAL, str(SERVER_DATA))]
    for node, url in zip(record.nodes[1:servers], record.servers[1:], strict=True):
        start_process(record, root, node, "server", SERVER_START)
        wait_until(_healthy(url, record), timeout_s, record, root, f"the server {url} never answered")
    for node in record.nodes:
        join(record, node, node_token(record, init["admin_token"], node))
        start_process(record, root, node, "agent", AGENT_START)
    write_context(record, init["admin_token"])
    wait_until(
        lambda: all_ready(record, init["admin_token"]), timeout_s, record, root, "nodes did not all join"
    )
    record.cluster = True
    state.save(record)


def server_init(record: SandboxState, node: SandboxNode, dsn: str = "") -> dict[str, str]:
    """`shoal server init` on the node (on `dsn`, else a private PostgreSQL); returns its JSON
    (admin and join tokens, CA, URL)."""
    argv = [*SHOAL, "server", "init", "--data-dir", str(SERVER_DATA), "--output", "json"]
    argv += ["--db", dsn] if dsn else []
    argv += ["--listen", f"0.0.0.0:{SERVER_PORT}", "--advertise", f"https://{node.address}:{SERVER_PORT}"]
    argv += ["--server-node", node.name, "--ingress-tls", "internal", "--ingress-host", SERVER_INGRESS_HOST]
    proc = run_in(node.holder_pid, argv, timeout_s=120)
    if proc.returncode != 0:
        raise NodeError(f"node {node.name}: server init failed: {_tail(proc.stderr)}")
    doc: dict[str, str] = json.loads(proc.stdout.strip().splitlines()[-1])
    return doc


def node_token(record: SandboxState, admin_token: str, node: SandboxNode) -> str:
    """A one-use join token granting the node its part: ingress if it is an ingress node, relay
    if it is public (every public node relays, as it always has in the sandbox), the server's
    own machine's name for the first."""
    server = node.name == record.nodes[0].name  # `server init --server-node` names the first
    grants = {"uses": 1, "ttl_s": 3600, "ingress": node.ingress, "relay": not node.nat, "server": server}
    headers = {"Authorization": f"Bearer {admin_token}"}
    try:
        answer = httpx.post(
            f"{record.server}/api/v1/join-tokens", json=grants, headers=headers, verify=record.ca, timeout=15
        )
    except httpx.HTTPError as exc:
        raise NodeError(f"node {node.name}: cannot make its join token: {exc}") from exc
    if answer.status_code != 200:
        raise NodeError(f"node {node.name}: cannot make its join token: {answer.text[:200]}")
    return str(answer.json()["token"])


def join(record: SandboxState, node: SandboxNode, token: str) -> None:
    """`shoal join` on the node, with the sandbox's per-node settings (its token grants the rest)."""
    argv = [*SHOAL, "join", record.server, "--token", token, "--name", node.name]
    argv += [] if node.nat else ["--endpoint", f"{node.address}:{WIREGUARD_PORT}"]
    argv += [
        "--set",
        f"cgroup_parent=shoal-sbx-{node.name}",
        "--set",
        f"insecure_registries={record.registry},{REGISTRY_IP}:{PRIVATE_REGISTRY_PORT}",
    ]
    proc = run_in(node.holder_pid, argv, timeout_s=60)
    if proc.returncode != 0:
        raise NodeError(f"node {node.name}: join failed: {_tail(proc.stderr or proc.stdout)}")


def start_process(record: SandboxState, root: Path, node: SandboxNode, role: str, argv: list[str]) -> None:
    log = root / "logs" / f"{node.name}-{role}.log"
    pid = spawn([*enter(node.holder_pid), *argv], log)
    record.processes.append(ProcessRecord(node=node.name, role=role, pid=pid, log=str(log)))
    state.save(record)


def _healthy(url: str, record: SandboxState) -> Callable[[], bool]:
    return lambda: api_healthy(url, record)


def api_healthy(url: str, record: SandboxState) -> bool:
    try:
        resp = httpx.get(f"{url}/api/v1/health", verify=record.ca, timeout=2)
    except httpx.HTTPError:
        return False
    return resp.status_code == 200


def all_ready(record: SandboxState, token: str) -> bool:
    """Whether every node is ready and has a WireGuard handshake with every public node."""
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=record.server, verify=record.ca, headers=headers, timeout=5) as api:
            details = [api.get(f"/api/v1/nodes/{n.name}") for n in record.nodes]
    except httpx.HTTPError:
        return False
    if any(resp.status_code != 200 for resp in details):
        return False
    public = {n.name for n in record.nodes if not n.nat}
    return mesh_ready([resp.json() for resp in details], public)


def mesh_ready(nodes: list[dict[str, Any]], public: set[str]) -> bool:
    """Pure: every node (API detail) is ready, and every NAT'd node has shaken hands with every
    public node (its keepalives hold those tunnels open; public nodes reach each other directly,
    and NAT'd nodes reach each other through them)."""
    for node in nodes:
        shaken = {p.get("name") for p in node.get("peers") or [] if p.get("latest_handshake")}
        if node.get("state") != "ready" or (node["name"] not in public and not public <= shaken):
            return False
    return True


def wait_until(
    check: Callable[[], bool], timeout_s: float, record: SandboxState, root: Path, what: str
) -> None:
    """Poll ``check`` until true; a dead process or the timeout fails naming it and its log."""
    deadline = time.monotonic() + timeout_s
    while not check():
        dead = [p for p in record.processes if not alive(p.pid)]
        if dead:
            p = dead[0]
            raise NodeError(f"node {p.node}: {p.role} exited: {last_lines(Path(p.log))}")
        if time.monotonic() > deadline:
            p = record.processes[-1]
            raise NodeError(
                f"{what} within {timeout_s:.0f}s; {p.node} {p.role} log: {last_lines(Path(p.log))}"
            )
        time.sleep(0.5)


def ingress_ca(record: SandboxState) -> str:
    """The root certificate the ingress node's Caddy chains to (host path), once it exists."""
    for node in record.nodes:
        for candidate in CADDY_ROOT_CERTS:
            path = node_dir(Path(record.dir), node.name) / candidate
            if node.ingress and path.exists():
                return str(path)
    return ""


def write_context(record: SandboxState, token: str) -> None:
    """Point the CLI at the sandbox: the context named `sandbox` (its CA pinned), made current."""
    store = ContextStore()
    store.put(CONTEXT, record.server, token, Path(record.ca).read_bytes(), current=True)
    if len(record.servers) > 1:
        store.set_servers(CONTEXT, record.servers)


def _tail(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else "no output"


def restart_process(record: SandboxState, node_name: str, role: str) -> int:
    """Start a node's server or agent again (after a kill, in tests and benchmarks); returns its pid."""
    node = record.node(node_name)
    start_process(record, Path(record.dir), node, role, SERVER_START if role == "server" else AGENT_START)
    return record.processes[-1].pid


def process(record: SandboxState, node_name: str, role: str) -> ProcessRecord:
    """The latest recorded process of a role on a node."""
    found = [p for p in record.processes if p.node == node_name and p.role == role]
    if not found:
        raise NodeError(f"no {role} recorded on node {node_name}")
    return found[-1]

"""`shoal join` and the agent loop against a real `shoal server` (the `server` fixture).

The join token's CA fingerprint is pinned before the token is sent: a token whose fingerprint is
not the server's CA is refused with one line and no node is registered. A joined node's agent
(in this process, real client) long-polls its state and heartbeats: the server sees it ready.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from shoal.agent import config as cfg
from shoal.agent.assemble import build_agent, runtime_config
from shoal.agent.runtime import Runtime
from tests.support.server_fixtures import Server

from .conftest import free_port, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def shoal_join(
    server: Server, token: str, data_dir: Path, name: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "shoal", "join", server.url, "--token", token, "--name", name, *extra]
    argv += ["--data-dir", str(data_dir), "--label", "zone=a", "--endpoint", "192.0.2.7:51820"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def one_use_token(server: Server) -> str:
    with server.client(server.admin_token) as http:
        answer = http.post("/api/v1/join-tokens", json={"uses": 1, "ttl_s": 600})
    answer.raise_for_status()
    return str(answer.json()["token"])


def node_names(server: Server) -> list[str]:
    with server.client(server.admin_token) as http:
        return [n["name"] for n in http.get("/api/v1/nodes").json()]


def test_wrong_fingerprint_is_refused_before_sending(server: Server, tmp_path: Path) -> None:
    token = one_use_token(server)
    tampered = token[:-64] + ("0" * 64 if not token.endswith("0" * 64) else "1" * 64)
    done = shoal_join(server, tampered, tmp_path / "data", "sha-evil")
    assert done.returncode != 0
    assert "does not match the join token" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "data" / cfg.NODE_FILE).exists()
    assert "sha-evil" not in node_names(server)
    ok = shoal_join(server, token, tmp_path / "data", "sha-good")  # the one use was not spent
    assert ok.returncode == 0, ok.stderr


def test_join_stores_identity_and_agent_heartbeats(server: Server, tmp_path: Path) -> None:
    data = tmp_path / "data"
    done = shoal_join(server, server.join_token, data, "sha-n1")
    assert done.returncode == 0, done.stderr
    assert "warning: the join token does not grant zone=a: ignored" in done.stderr  # --label: a request
    for name in (cfg.NODE_FILE, cfg.AGENT_FILE, cfg.CA_FILE, cfg.WG_KEY_FILE):
        assert ((data / name).stat().st_mode & 0o777) == 0o600, name
    node = cfg.load_node(data)
    assert node.name == "sha-n1" and node.credential and node.agent_secret and node.subnet
    assert (data / cfg.CA_FILE).read_bytes() == Path(server.ca).read_bytes()

    config = dataclasses.replace(
        cfg.load_config(data), run_dir=tmp_path / "run", runtime_dir=tmp_path / "run" / "rt",
        cgroup_parent="/sha-join", agent_listen="127.0.0.1", agent_port=free_port(),
        heartbeat_s=0.2, poll_wait_s=2, manage_network=False,
    )  # fmt: skip
    agent = build_agent(config, node)
    thread = threading.Thread(target=agent.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: agent.server_ok and agent.state is not None, 20, "state fetched")
        wait_for(lambda: _ready(server, "sha-n1"), 20, "node ready")
        assert config.state_file.exists()
    finally:
        agent.stop()
        thread.join(timeout=10)
    assert not thread.is_alive()


def _ready(server: Server, name: str) -> bool:
    with server.client(server.admin_token) as http:
        node = http.get(f"/api/v1/nodes/{name}").json()
    return bool(node.get("state") == "ready" and node.get("last_seen"))


def test_agent_start_runs_a_deploy_and_adopts_after_kill9(
    server: Server, tmp_path: Path, registry: str, test_images: dict[str, str]
) -> None:
    """join --set → `shoal agent start` → deploy through the API → running on the server's word;
    kill -9 of the agent and a new `agent start` → same pid, no restart; SIGTERM ends it cleanly."""
    data, run = tmp_path / "data", tmp_path / "run"
    sets = [
        f"run_dir={run}",
        f"runtime_dir={run}/rt",
        f"cgroup_parent=/sha-d{os.getpid()}",
        "agent_listen=127.0.0.1",
        f"agent_port={free_port()}",
        "heartbeat_s=0.3",
        "manage_network=false",
        f"insecure_registries={registry}",
    ]
    joined = shoal_join(server, server.join_token, data, "sha-d1", *[a for kv in sets for a in ("--set", kv)])
    assert joined.returncode == 0, joined.stderr
    config = cfg.load_config(data)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(_agent_start(data, tmp_path))
        compose = f"services:\n  shaweb:\n    image: {test_images['sleep']}\n    deploy:\n      replicas: 2\n"
        with server.client(server.admin_token) as http:
            deployed = http.post("/api/v1/deploy", json={"compose": compose, "project": "sha"})
        assert deployed.status_code == 200, deployed.text
        why = lambda: f"{_tasks(server)}\n{(tmp_path / 'agent.log').read_text()[-3000:]}"  # noqa: E731
        wait_for(lambda: _task_states(server) == ["running", "running"], 90, why)
        before = {c.id: c.pid for c in Runtime(runtime_config(config)).list()}
        os.kill(procs[0].pid, signal.SIGKILL)
        procs[0].wait(timeout=10)
        procs.append(_agent_start(data, tmp_path))
        wait_for(lambda: _task_states(server) == ["running", "running"], 30, why)
        time.sleep(2 * config.resync_s)  # a couple of full passes of the new agent
        assert {c.id: c.pid for c in Runtime(runtime_config(config)).list()} == before
        procs[1].send_signal(signal.SIGTERM)
        assert procs[1].wait(timeout=15) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        _remove_containers(config)


def _agent_start(data: Path, logs: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "shoal", "agent", "start", "--data-dir", str(data)]
    out = (logs / "agent.log").open("ab")
    return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _tasks(server: Server) -> list[dict[str, object]]:
    with server.client(server.admin_token) as http:
        return list(http.get("/api/v1/tasks", params={"service": "shaweb"}).json())


def _task_states(server: Server) -> list[str]:
    return sorted(str(t["state"]) for t in _tasks(server))


def _remove_containers(config: cfg.AgentConfig) -> None:
    from .conftest import AgentEnv, _teardown

    env = AgentEnv(config.data_dir.parent, config, cfg.NodeRecord("", "", "", "", "", "", ""))
    _teardown(env)

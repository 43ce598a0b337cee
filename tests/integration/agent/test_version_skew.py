"""Version skew for real: the previous minor release's agent, built from its git tag, against this
tree's server.

The newest tag of the previous minor (`v0.1.0` for 0.2.x) is exported with `git archive` into a
temp dir and run from there (its own source tree first on the path, this venv's dependencies):
its `shoal join` joins the current server, its `shoal agent start` runs the node. This tree's CLI
deploys a web service onto it; the replica runs and is healthy (`shoal ps`), answers HTTP from
inside its network namespace, and `shoal node ls` shows the node's VERSION as the old release's.
What the server asks of the agent works too: `service logs`, `service exec` and the agent's metrics,
relayed by the server to the agent's endpoint on its overlay address (the cluster CIDR is put in
127.0.0.0/8 so that address is a loopback one). A clone without the tag fails with one line
saying how to fetch it.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.agent import config as cfg
from shoal.agent.assemble import runtime_config
from shoal.agent.runtime import Runtime
from tests.support.releases import exported_previous_release, old_shoal
from tests.support.server_fixtures import Server, ServerFactory

from .conftest import free_port, wait_for
from .test_join import _remove_containers, one_use_token

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

NODE = "sha-skew1"
SERVICE = "shaskew"


@pytest.fixture
def old_tree() -> Iterator[tuple[str, Path]]:
    with exported_previous_release() as found:
        yield found


@pytest.fixture
def skew_server(server_factory: ServerFactory) -> Server:
    """A server whose cluster CIDR is in 127.0.0.0/8, so the node's overlay address (where the
    server calls its agent for logs and exec) is a loopback one; the agent port a free one."""
    cidr = f"127.{secrets.randbelow(200) + 20}.0.0/16"
    srv = server_factory("--grace", "3", "--cluster-cidr", cidr, start=False)
    config = json.loads((srv.data_dir / "server.json").read_text())
    config["agent_port"] = free_port()
    (srv.data_dir / "server.json").write_text(json.dumps(config))
    srv.start()
    return srv


def _old(root: Path, *args: str, **popen: object) -> subprocess.Popen[bytes]:
    """`shoal ARGS` of the old release."""
    return subprocess.Popen([*old_shoal(root), *args], **popen)  # type: ignore[call-overload,no-any-return]


def _current(server: Server, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home), "SHOAL_SERVER": server.url, "SHOAL_TOKEN": server.admin_token}
    env["SHOAL_CACERT"] = server.ca
    argv = [sys.executable, "-m", "shoal", *args]
    return subprocess.run(argv, cwd=home, env=env, capture_output=True, text=True, timeout=60, check=False)


def _join_old(root: Path, server: Server, data: Path, run: Path, registry: str) -> None:
    sets = [
        f"run_dir={run}",
        f"runtime_dir={run}/rt",
        f"cgroup_parent=/sha-skew{os.getpid()}",
        f"agent_port={json.loads((server.data_dir / 'server.json').read_text())['agent_port']}",
        "heartbeat_s=0.3",
        "manage_network=false",
        f"insecure_registries={registry}",
    ]
    argv = ["join", server.url, "--token", one_use_token(server), "--name", NODE, "--data-dir", str(data)]
    argv += ["--endpoint", "192.0.2.9:51820", *[a for kv in sets for a in ("--set", kv)]]
    joined = _old(root, *argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = joined.communicate(timeout=60)
    assert joined.returncode == 0, out.decode(errors="replace")


def _compose(image: str) -> str:
    check = '["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/health"]'
    return (
        f"services:\n  {SERVICE}:\n    image: {image}\n"
        f"    healthcheck:\n      test: {check}\n      interval: 1s\n      retries: 3\n"
    )


def test_previous_release_agent_runs_a_deploy(
    skew_server: Server,
    old_tree: tuple[str, Path],
    tmp_path: Path,
    registry: str,
    test_images: dict[str, str],
) -> None:
    server, (old_version, root) = skew_server, old_tree
    data, run = tmp_path / "data", tmp_path / "run"
    _join_old(root, server, data, run, registry)
    config = cfg.load_config(data)
    log = (tmp_path / "agent.log").open("ab")
    agent = _old(root, "agent", "start", "--data-dir", str(data), stdout=log, stderr=subprocess.STDOUT)
    why = lambda: f"the {old_version} agent's log:\n{(tmp_path / 'agent.log').read_text()[-3000:]}\n"  # noqa: E731
    try:
        wait_for(lambda: _api(server, "nodes", "version") == [old_version], 30, why)
        assert _nodes(server, tmp_path) == [(NODE, "ready", old_version)]
        assert old_version in _current(server, tmp_path, "node", "ls").stdout  # the VERSION column
        (tmp_path / "compose.yaml").write_text(_compose(test_images["httpd"]))
        compose = str(tmp_path / "compose.yaml")
        deployed = _current(server, tmp_path, "deploy", "-f", compose, "-p", "sha", "-d")
        assert deployed.returncode == 0, deployed.stderr
        wait_for(lambda: _api(server, "tasks", "health") == ["healthy"], 60, why)
        assert _replicas(server, tmp_path) == [(NODE, "running", "healthy")]
        assert "hello from" in _served(config)
        logs = _current(server, tmp_path, "service", "logs", SERVICE)  # relayed by the server
        assert "serving on port 8080" in logs.stdout, logs.stderr
        ran = _current(server, tmp_path, "service", "exec", SERVICE, "--", "cat", "/www/health")
        assert ran.stdout == "ok\n", ran.stderr
        with server.client() as http:  # the server's scrape path to the agent's own metrics
            assert (
                'shoal_agent_containers{state="running"} 1.0'
                in http.get(f"/api/v1/nodes/{NODE}/metrics").text
            )
    finally:
        log.close()
        if agent.poll() is None:
            os.kill(agent.pid, signal.SIGKILL)
            agent.wait(timeout=10)
        _remove_containers(config)


def _api(server: Server, listing: str, key: str) -> list[object]:
    """One field of every row of `GET /api/v1/LISTING` (polled: cheaper than the CLI)."""
    with server.client() as http:
        return [row[key] for row in http.get(f"/api/v1/{listing}").json()]


def _nodes(server: Server, home: Path) -> list[tuple[str, str, str]]:
    """`shoal node ls`: (name, state, version) of each node."""
    found = json.loads(_current(server, home, "node", "ls", "--output", "json").stdout)
    return [(n["name"], n["state"], n["version"]) for n in found]


def _replicas(server: Server, home: Path) -> list[tuple[str, str, str]]:
    """`shoal ps`: (node, state, health) of each replica."""
    found = json.loads(_current(server, home, "ps", "--output", "json").stdout)
    return [(r["node"], r["state"], r["health"]) for r in found]


def _served(config: cfg.AgentConfig) -> str:
    """The replica's page, fetched from inside its own network namespace."""
    (container,) = Runtime(runtime_config(config)).list()
    assert container.pid, container
    fetch = ["nsenter", f"--net=/proc/{container.pid}/ns/net", "curl", "-sf", "http://127.0.0.1:8080/"]
    page = lambda: subprocess.run(fetch, capture_output=True, text=True, check=False).stdout  # noqa: E731
    return str(wait_for(page, 20, "the page served"))

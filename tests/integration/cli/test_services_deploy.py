"""The CLI against a real server: services, ps, and deploy (its wait on a scripted node's reports,
`--detach`, and the 400 path naming the key and line)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from shoal.cli.deploy import DeployFailed, LineShow, wait
from shoal.client import Client
from shoal.client.receipt import DeployedService
from tests.integration.cli.conftest import ScriptedNode, Shoal, store_service, wait_until
from tests.support.server_fixtures import Server

PS_KEYS = {"project", "service", "replica", "node", "state", "health", "ip", "image"}


def _running(shoal: Shoal, service: str, count: int) -> bool:
    tasks = json.loads(shoal("ps", "--service", service, "-o", "json").stdout)
    return len(tasks) == count


def test_service_ls_inspect_scale_and_ps(shoal: Shoal, node: ScriptedNode) -> None:
    store_service(node.server, "web", replicas=2)
    wait_until(lambda: _running(shoal, "web", 2), what="2 tasks of web")
    node.report_all("running", "healthy")
    ps = json.loads(shoal("ps", "--output", "json").stdout)
    assert len(ps) == 2 and all(set(r) >= PS_KEYS for r in ps)
    assert {(r["service"], r["node"], r["state"], r["health"]) for r in ps} == {
        ("web", node.name, "running", "healthy")
    }
    assert sorted(r["replica"] for r in ps) == [1, 2] and all(r["ip"].startswith("10.210.") for r in ps)
    assert all(r["image"] == "registry.shx:5000/web:1" for r in ps)
    assert json.loads(shoal("ps", "--node", "shx-other", "-o", "json").stdout) == []
    listed = json.loads(shoal("service", "ls", "-o", "json").stdout)
    assert [(s["name"], s["replicas"], s["healthy"]) for s in listed] == [("web", 2, 2)]
    assert "2/2" in shoal("service", "ls").stdout
    scaled = shoal("service", "scale", "web=3")
    assert scaled.stdout.strip() == "service web scaled to 3"
    inspected = json.loads(shoal("service", "inspect", "web", "-o", "json").stdout)
    assert inspected["replicas"] == 3 and inspected["revisions"][0]["revision"] == 1
    assert "Revisions:" in shoal("service", "inspect", "web").stdout


def test_service_restart_rollback_rm(shoal: Shoal, node: ScriptedNode) -> None:
    store_service(node.server, "api")
    assert shoal("service", "restart", "api").stdout.strip() == "service api restarting as revision 2"
    rolled = shoal("service", "rollback", "api")
    assert rolled.stdout.strip() == "service api rolled back to revision 1", rolled.stderr
    assert shoal("service", "rm", "api").stdout.strip() == "removed service api"
    gone = shoal("service", "inspect", "api")
    assert gone.exit_code == 1 and len(gone.stderr.splitlines()) == 1 and "api" in gone.stderr
    bad = shoal("service", "scale", "web")
    assert bad.exit_code == 1 and "expected SERVICE=REPLICAS" in bad.stderr


def _wait_in_thread(server: Server, name: str, timeout: float) -> dict[str, object]:
    outcome: dict[str, object] = {}

    def run() -> None:
        with Client(server.url, server.admin_token, Path(server.ca)) as api:
            try:
                outcome["states"] = wait(api, [DeployedService(name=name, revision=1)], timeout, LineShow())
            except DeployFailed as exc:
                outcome["error"] = str(exc)

    thread = threading.Thread(target=run)
    thread.start()
    outcome["thread"] = thread
    return outcome


def test_deploy_wait_ends_when_replicas_are_healthy(shoal: Shoal, node: ScriptedNode) -> None:
    store_service(node.server, "web", replicas=2)
    outcome = _wait_in_thread(node.server, "web", timeout=60)
    wait_until(lambda: _running(shoal, "web", 2), what="2 tasks of web")
    node.report_all("running", "starting")
    node.report_all("running", "healthy")
    outcome["thread"].join(30)  # type: ignore[attr-defined]
    assert "error" not in outcome and [s.ready for s in outcome["states"]] == [2]  # type: ignore[attr-defined]


def test_deploy_wait_fails_with_the_agents_reason(shoal: Shoal, node: ScriptedNode) -> None:
    store_service(node.server, "web")
    outcome = _wait_in_thread(node.server, "web", timeout=60)
    wait_until(lambda: _running(shoal, "web", 1), what="a task of web")
    node.report_all("failed", message="pull registry.shx:5000/web:1: manifest unknown")
    outcome["thread"].join(30)  # type: ignore[attr-defined]
    assert (
        outcome["error"]
        == f"web replica 1 on {node.name} failed: pull registry.shx:5000/web:1: manifest unknown"
    )
    ps = json.loads(shoal("ps", "-o", "json").stdout)
    assert ps[0]["message"] == "pull registry.shx:5000/web:1: manifest unknown"
    failed = [e for e in json.loads(shoal("events", "-o", "json").stdout) if e["kind"] == "replica.failed"]
    assert [(e["subject"], e["message"]) for e in failed] == [
        (
            ps[0]["id"],
            f"shx.web replica 1 on {node.name} failed: pull registry.shx:5000/web:1: manifest unknown",
        )
    ]


def test_deploy_wait_times_out(server: Server) -> None:
    store_service(server, "lonely")  # no node: never placed
    outcome = _wait_in_thread(server, "lonely", timeout=1.5)
    outcome["thread"].join(30)  # type: ignore[attr-defined]
    assert outcome["error"] == (
        "not healthy after 1.5s: lonely: 0/1 pulled, 0/1 started, 0/1 healthy"
        " (unplaced: replica 1: no nodes in the cluster)"
    )


COMPOSE = """services:
  web:
    image: registry.shx:5000/web:1
    deploy:
      replicas: 1
"""
BAD_COMPOSE = """services:
  web:
    image: registry.shx:5000/web:1
    bogus_key: 1
"""


def _compose_supported(result_stderr: str) -> None:
    if "compose support is not available yet" in result_stderr:
        pytest.skip("the server cannot parse Compose files yet")


def test_deploy_detach(shoal: Shoal, tmp_path: Path) -> None:
    path = tmp_path / "compose.yaml"
    path.write_text(COMPOSE)
    got = shoal("deploy", "-f", str(path), "--project", "shx", "--detach")
    _compose_supported(got.stderr)
    assert got.exit_code == 0, got.stderr
    assert got.stdout.strip() == "accepted project shx: web (revision 1)"
    as_json = shoal("deploy", "-f", str(path), "--project", "shx", "--detach", "-o", "json")
    assert json.loads(as_json.stdout)["services"] == [{"name": "web", "revision": 1}]


def test_deploy_bad_file_names_key_and_line(shoal: Shoal, tmp_path: Path) -> None:
    path = tmp_path / "compose.yaml"
    path.write_text(BAD_COMPOSE)
    got = shoal("deploy", "-f", str(path), "--detach")
    _compose_supported(got.stderr)
    assert got.exit_code == 1 and len(got.stderr.splitlines()) == 1
    assert got.stderr.startswith(f"error: {path}: ") and "bogus_key" in got.stderr and "line 4" in got.stderr


def test_deploy_rejection_is_one_line_naming_the_file(shoal: Shoal, tmp_path: Path) -> None:
    path = tmp_path / "compose.yaml"
    path.write_text(COMPOSE)
    got = shoal("deploy", "-f", str(path), "--project", "Bad Project!", "--detach")
    assert got.exit_code == 1 and len(got.stderr.splitlines()) == 1
    assert got.stderr.startswith('error: -p/--project: invalid project name "Bad Project!"')
    path.write_text("name: Bad Project!\n" + COMPOSE)
    named = shoal("deploy", "-f", str(path), "--detach")
    assert named.exit_code == 1 and len(named.stderr.splitlines()) == 1
    assert named.stderr.startswith(f'error: {path}: name: invalid project name "Bad Project!"')
    assert named.stderr.rstrip().endswith("(line 1)")
    missing = shoal("deploy", "-f", str(tmp_path / "nope.yaml"))
    assert missing.exit_code == 1 and "nope.yaml: No such file or directory" in missing.stderr


def _deploy_process(shoal: Shoal, path: Path) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "shoal", "deploy", "-f", str(path), "--project", "shx", "--timeout", "60"]
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **shoal.env}
    )


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out, err


@pytest.mark.parametrize("outcome", ["healthy", "failed"])
def test_deploy_waits_for_the_replicas(
    shoal: Shoal, node: ScriptedNode, tmp_path: Path, outcome: str
) -> None:
    path = tmp_path / "compose.yaml"
    path.write_text(COMPOSE)
    proc = _deploy_process(shoal, path)
    wait_until(lambda: proc.poll() is not None or bool(node.state().containers), what="the replica placed")
    if proc.poll() is not None:
        err = _finish(proc)[2]
        _compose_supported(err)
        pytest.fail(f"deploy ended before its replica was placed: {err}")
    if outcome == "healthy":
        node.report_all("running", "healthy")
    else:
        node.report_all("failed", message="start: exec /bin/app: no such file or directory")
    code, out, err = _finish(proc)
    if outcome == "healthy":
        assert code == 0, err
        assert out.strip() == "deployed project shx: web (revision 1)"
        assert "web: 1/1 pulled, 1/1 started, 1/1 healthy" in err
    else:
        assert code == 1
        assert err.splitlines()[-1] == (
            f"error: web replica 1 on {node.name} failed: start: exec /bin/app: no such file or directory"
        )

"""A private registry with a password on the sandbox: a deploy of one of its images fails in one
line naming `shoal registry login` until the login is stored, then runs; only the node that pulls
from it ever receives the login, and never in its saved state.json; no auth file outlives a pull.

The registry (Debian's docker-registry behind htpasswd) runs beside the sandbox's own, in its
network namespace on the port the sandbox's agents know as plain HTTP; it is stopped, the login and
the project removed at the end, even on failure.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.sandbox.images import cached_build, example_app_spec
from shoal.sandbox.layout import INET_NS, PRIVATE_REGISTRY_PORT, REGISTRY_IP
from shoal.sandbox.net import in_netns
from shoal.sandbox.registry import start_registry
from tests.e2e.helpers import SHOAL, Sandbox, wait_for
from tests.support.registry_fixtures import bcrypt_line

HOST = f"{REGISTRY_IP}:{PRIVATE_REGISTRY_PORT}"
USER, PASSWORD = "e2e-team", "e2e-registry-pass-7Qx"
PROJECT, SERVICE, PULLER = "privreg", "private", "n2"
COMPOSE = f"""services:
  {SERVICE}:
    image: {HOST}/team/hello:latest
    deploy: {{placement: {{constraints: ["node.hostname == {PULLER}"]}}}}
"""


@pytest.fixture(scope="module")
def private_image(cluster: Sandbox) -> Iterator[str]:
    work = Path(tempfile.mkdtemp(prefix="sbx-privreg-"))
    try:
        (work / "htpasswd").write_text(bcrypt_line(USER, PASSWORD))
        registry = start_registry(
            work / "registry", HOST, prefix=in_netns(INET_NS), htpasswd=work / "htpasswd"
        )
        try:
            layout = cached_build(example_app_spec(), cluster.dir / "image-cache")
            ref = f"{HOST}/team/hello:latest"
            push = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"--dest-creds={USER}:{PASSWORD}"]
            subprocess.run([*push, f"oci:{layout}:latest", f"docker://{ref}"], check=True, timeout=120)
            yield ref
        finally:
            cluster.shoal("project", "rm", PROJECT)
            cluster.shoal("registry", "rm", HOST)
            registry.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _task(cluster: Sandbox) -> dict[str, object]:
    rows = [t for t in cluster.shoal_json("ps") if t["service"] == SERVICE]
    return rows[0] if rows else {}


def _node_file(cluster: Sandbox, node: str, path: str) -> str:
    """A file inside a node's own mount namespace ('' when it is not there)."""
    return cluster.exec(node, "sh", "-c", f"cat {path} 2>/dev/null || true").stdout


def test_private_registry_serves_a_deploy_after_login(cluster: Sandbox, private_image: str) -> None:
    compose = cluster.dir / "privreg-compose.yaml"
    compose.write_text(COMPOSE)
    got = cluster.shoal("deploy", "-f", str(compose), "-p", PROJECT, "--detach")
    assert got.returncode == 0, got.stderr
    wait_for(lambda: "shoal registry login" in str(_task(cluster).get("message", "")), 60, "the refused pull")
    message = str(_task(cluster)["message"])
    assert "\n" not in message and f"shoal registry login {HOST}" in message
    argv = [*SHOAL, "registry", "login", HOST, "-u", USER, "--password-stdin"]
    login = subprocess.run(
        argv, input=PASSWORD, capture_output=True, text=True, timeout=60, env=cluster.env, check=False
    )
    assert login.returncode == 0, login.stderr
    wait_for(lambda: _task(cluster).get("state") == "running", 60, "the replica pulled with the login")
    assert _task(cluster)["node"] == PULLER
    listed = cluster.shoal("registry", "ls", "--output", "json")
    assert [(r["host"], r["username"]) for r in json.loads(listed.stdout)] == [(HOST, USER)]
    assert PASSWORD not in listed.stdout


def test_only_the_pulling_node_holds_the_login_and_never_in_state_json(cluster: Sandbox) -> None:
    assert _task(cluster).get("state") == "running", "needs the deploy of the test before"
    for node in (n["name"] for n in cluster.status["nodes"]):
        saved = _node_file(cluster, node, "/var/lib/shoal/state.json")
        kept = _node_file(cluster, node, "/run/shoal/secrets/.state-registry-auths.json")
        assert saved and PASSWORD not in saved and HOST not in json.loads(saved).get("registry_auths", [])
        assert _node_file(cluster, node, "/run/shoal/pull-auth/*/auth.json") == ""  # none outlives a pull
        if node == PULLER:
            assert [a["host"] for a in json.loads(kept)] == [HOST] and PASSWORD in kept
        else:
            assert PASSWORD not in kept

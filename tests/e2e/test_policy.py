"""The node policy on the sandbox: an operator's deploy binding `/` or the server's data directory
is refused (403, one line naming key and line); after the admin grants a host prefix, a bind under
it deploys and the file there is read inside the container. The policy is reset and the project
removed at the end, even on failure.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.sandbox.cluster import SERVER_INGRESS_HOST
from tests.e2e.helpers import SHOAL, Sandbox, wait_for

SERVICE = """services:
  reader:
    image: {image}
    volumes: ['{source}:/data:ro']
    deploy: {{placement: {{constraints: ["node.hostname == n1"]}}}}
"""


def _as(cluster: Sandbox, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**cluster.env, "SHOAL_TOKEN": token}
    return subprocess.run([*SHOAL, *args], capture_output=True, text=True, check=False, timeout=120, env=env)


@pytest.fixture(scope="module")
def operator(cluster: Sandbox) -> Iterator[str]:
    made = cluster.shoal_json("token", "create", "--role", "operator", "--name", "e2e-policy")
    try:
        yield str(made["token"])
    finally:
        cluster.shoal("token", "rm", str(made["id"]))


@pytest.fixture(scope="module")
def shared() -> Iterator[Path]:
    """A host directory the policy will grant (the sandbox's nodes share the host's filesystem)."""
    folder = Path(tempfile.mkdtemp(prefix="shoal-e2e-policy-"))
    folder.chmod(0o755)
    (folder / "hello.txt").write_text("granted by the policy\n")
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _deploy(cluster: Sandbox, token: str, source: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    image = f"{cluster.status['registry']}/example/hello:latest"
    path = tmp / "compose.yaml"
    path.write_text(SERVICE.format(image=image, source=source))
    return _as(cluster, token, "deploy", "-f", str(path), "-p", "polp", "--detach")


@pytest.mark.parametrize(
    ("source", "fault"),
    [("/", "bind of / is never allowed"), ("/var/lib/shoal/server", "exposes /var/lib/shoal")],
)
def test_operator_cannot_bind_root_or_the_server_data(
    cluster: Sandbox, operator: str, tmp_path: Path, source: str, fault: str
) -> None:
    got = _deploy(cluster, operator, source, tmp_path)
    assert got.returncode == 1 and len(got.stderr.splitlines()) == 1, got.stderr
    assert "services.reader.volumes[0]" in got.stderr and fault in got.stderr and "(line 4)" in got.stderr
    assert "polp" not in {p["name"] for p in cluster.shoal_json("project", "ls")}


def test_a_granted_prefix_deploys_and_the_file_is_visible(
    cluster: Sandbox, operator: str, shared: Path, tmp_path: Path
) -> None:
    refused = _deploy(cluster, operator, str(shared), tmp_path)
    assert refused.returncode == 1 and "refused by the node policy" in refused.stderr, refused.stderr
    policy = f"grants:\n  - roles: [operator]\n    binds: [{{path: {shared}, mode: ro}}]\n"
    try:
        (tmp_path / "policy.yaml").write_text(policy)
        got = cluster.shoal("policy", "set", "-f", str(tmp_path / "policy.yaml"))
        assert got.returncode == 0, got.stderr
        deployed = _deploy(cluster, operator, str(shared), tmp_path)
        assert deployed.returncode == 0, deployed.stderr
        wait_for(
            lambda: _read(cluster) == "granted by the policy", 180, "the bound file read in the container"
        )
        still = _deploy(cluster, operator, "/var/lib/shoal/server", tmp_path)  # never, whatever the policy
        assert still.returncode == 1 and "is never allowed" in still.stderr
    finally:
        (tmp_path / "empty.yaml").write_text("grants: []\n")
        cluster.shoal("policy", "set", "-f", str(tmp_path / "empty.yaml"))
        cluster.shoal("project", "rm", "polp")


def _read(cluster: Sandbox) -> str:
    got = cluster.shoal("service", "exec", "reader", "-p", "polp", "--", "cat", "/data/hello.txt", timeout=30)
    return got.stdout.strip() if got.returncode == 0 else ""


HOSTED = """services:
  site:
    image: {image}
    x-shoal:
      ingress: {{host: {host}, port: 8080}}
"""


def _deploy_host(
    cluster: Sandbox, token: str, host: str, project: str, tmp: Path
) -> subprocess.CompletedProcess[str]:
    path = tmp / f"{project}.yaml"
    path.write_text(HOSTED.format(image=f"{cluster.status['registry']}/example/hello:latest", host=host))
    return _as(cluster, token, "deploy", "-f", str(path), "-p", project, "--detach")


def test_an_operator_cannot_take_the_uis_host_nor_another_projects(
    cluster: Sandbox, operator: str, tmp_path: Path
) -> None:
    ui = _deploy_host(cluster, operator, SERVER_INGRESS_HOST, "hosta", tmp_path)
    assert ui.returncode == 1 and len(ui.stderr.strip().splitlines()) == 1, ui.stderr
    assert "is where shoal's own API and web UI are published" in ui.stderr
    try:
        first = _deploy_host(cluster, operator, "claimed.sandbox.test", "hosta", tmp_path)
        assert first.returncode == 0, first.stderr
        second = _deploy_host(cluster, operator, "claimed.sandbox.test", "hostb", tmp_path)
        assert second.returncode == 1, second.stderr
        assert "claimed.sandbox.test is held by project hosta (service hosta.site)" in second.stderr
    finally:
        for project in ("hosta", "hostb"):
            cluster.shoal("project", "rm", project)

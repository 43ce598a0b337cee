"""Compose networks enforced on the sandbox, across nodes and NAT.

Project `netp`: `db` (n1) on `back`, `app` (n3, NAT'd) on `back` and `front`, `web` (n4, NAT'd) on
`front` only. Project `netq` has its own `db` and a `probe` on n1, beside netp's `db`. `app`
reaches `db` by `db` and by `db.netp.shoal.internal`; `web` reaches `app` (so its path works) but
not `db`; `probe` resolves `db` to its own project's and cannot reach netp's by address. netp is
deployed with `shoal deploy -f compose.yaml` from a directory holding a `.env`, whose variable
reaches `app`'s environment. Names are resolved with nslookup and reached by address with
`nc -w 2` (busybox-static's wget crashes resolving names), so a refused path fails in seconds.
Both projects are removed at the end, even on failure.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.helpers import SHOAL, Sandbox, wait_for

NETP = """
services:
  db:
    image: {image}
    networks: [back]
    deploy: {{placement: {{constraints: ["node.hostname == n1"]}}}}
  app:
    image: {image}
    environment:
      FROM_DOTENV: ${{NETP_FROM_DOTENV}}
    networks: [back, front]
    deploy: {{placement: {{constraints: ["node.hostname == n3"]}}}}
  web:
    image: {image}
    networks: [front]
    deploy: {{placement: {{constraints: ["node.hostname == n4"]}}}}
networks:
  back: {{}}
  front: {{}}
"""
NETQ = """
services:
  db:
    image: {image}
  probe:
    image: {image}
    deploy: {{placement: {{constraints: ["node.hostname == n1"]}}}}
"""
DOTENV_VALUE = "from-the-dotenv-file"
RESOLVE = "nslookup {name} 2>/dev/null | awk '/^Name:/{{n=1}} n && /^Address/{{print $NF; exit}}'"
FETCH = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 5 nc -w 2 {ip} 8080"


def _running(cluster: Sandbox) -> set[tuple[str, str]]:
    tasks = cluster.shoal_json("ps")
    return {(str(t["project"]), str(t["service"])) for t in tasks if t["state"] == "running"}


def _sh(cluster: Sandbox, project: str, service: str, script: str) -> subprocess.CompletedProcess[str]:
    return cluster.shoal("service", "exec", service, "-p", project, "--", "sh", "-c", script, timeout=30)


def resolve(cluster: Sandbox, project: str, service: str, name: str) -> str:
    """The address ``name`` resolves to inside ``service``'s replica ('' when it does not)."""
    return _sh(cluster, project, service, RESOLVE.format(name=name)).stdout.strip()


def reaches(cluster: Sandbox, project: str, service: str, ip: str) -> bool:
    """Whether ``service``'s replica gets the page of port 8080 at ``ip`` (within about 2 s)."""
    return "hello from" in _sh(cluster, project, service, FETCH.format(ip=ip)).stdout


def _deploy_from(folder: Path, env: dict[str, str], *args: str) -> None:
    """`shoal deploy ARGS` run in ``folder``, as a person beside their compose.yaml and .env."""
    argv = [*SHOAL, "deploy", *args]
    got = subprocess.run(argv, check=False, cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert got.returncode == 0, got.stderr or got.stdout


@pytest.fixture(scope="module")
def projects(cluster: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    image = f"{cluster.status['registry']}/example/hello:latest"
    folder = tmp_path_factory.mktemp("netp")
    (folder / "compose.yaml").write_text(NETP.format(image=image))
    (folder / ".env").write_text(f"NETP_FROM_DOTENV={DOTENV_VALUE}\n")
    (folder / "netq.yaml").write_text(NETQ.format(image=image))
    env = {k: v for k, v in cluster.env.items() if k != "NETP_FROM_DOTENV"}
    try:
        for argv in (["-f", "compose.yaml", "-p", "netp"], ["-f", "netq.yaml", "-p", "netq"]):
            _deploy_from(folder, env, *argv)
        wanted = {("netp", "db"), ("netp", "app"), ("netp", "web"), ("netq", "db"), ("netq", "probe")}
        wait_for(lambda: _running(cluster) >= wanted, 180, "both projects running")
        yield cluster
    finally:
        for project in ("netp", "netq"):
            cluster.shoal("project", "rm", project)


def test_a_service_on_back_reaches_db_by_short_and_project_name(projects: Sandbox) -> None:
    db = resolve(projects, "netp", "app", "db")
    assert db, "db does not resolve in app"
    assert resolve(projects, "netp", "app", "db.netp.shoal.internal") == db
    wait_for(lambda: reaches(projects, "netp", "app", db), 60, "app (n3, NAT'd) -> db (n1)")


def test_a_service_on_front_only_does_not_reach_db(projects: Sandbox) -> None:
    db = resolve(projects, "netp", "app", "db")
    app = resolve(projects, "netp", "web", "app")
    assert db and app
    wait_for(lambda: reaches(projects, "netp", "web", app), 60, "web (n4, NAT'd) -> app (n3) on front")
    assert not reaches(projects, "netp", "web", db)


def test_another_project_does_not_reach_db(projects: Sandbox) -> None:
    db = resolve(projects, "netp", "app", "db")
    own = resolve(projects, "netq", "probe", "db")
    assert db and own and own != db, (db, own)
    wait_for(lambda: reaches(projects, "netq", "probe", own), 60, "probe -> its own project's db")
    assert not reaches(projects, "netq", "probe", db)  # same node (n1): bridge to bridge


def test_a_dotenv_variable_reaches_the_container(projects: Sandbox) -> None:
    got = _sh(projects, "netp", "app", "tr '\\0' '\\n' < /proc/1/environ")
    assert f"FROM_DOTENV={DOTENV_VALUE}" in got.stdout.splitlines(), got.stdout

"""Projects are namespaces on the sandbox: two projects with the same service names run side by
side (each its own replicas, reached with -p), and `deploy --prune` removes a service deleted from
the file while the other project's service of that name keeps running."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.helpers import Sandbox, wait_for

PROJECTS = ("proja", "projb")


def _compose(registry: str, *services: str) -> str:
    body = "".join(f"  {s}:\n    image: {registry}/example/hello:latest\n" for s in services)
    return "services:\n" + body


def _running(cluster: Sandbox) -> set[tuple[str, str]]:
    return {
        (str(t["project"]), str(t["service"]))
        for t in cluster.shoal_json("ps")
        if t["state"] == "running" and t["project"] in PROJECTS
    }


def _deploy(cluster: Sandbox, path: Path, project: str, *flags: str) -> None:
    got = cluster.shoal("deploy", "-f", str(path), "--project", project, *flags, timeout=300)
    assert got.returncode == 0, got.stderr or got.stdout


@pytest.fixture(scope="module")
def two(cluster: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Path]]:
    folder = tmp_path_factory.mktemp("projects")
    (folder / "both.yaml").write_text(_compose(cluster.status["registry"], "web", "extra"))
    try:
        for project in PROJECTS:
            _deploy(cluster, folder / "both.yaml", project)
        yield cluster, folder
    finally:
        for project in PROJECTS:
            cluster.shoal("project", "rm", project)


def test_two_projects_with_the_same_service_names_run_side_by_side(two: tuple[Sandbox, Path]) -> None:
    cluster, _ = two
    both = {(p, s) for p in PROJECTS for s in ("web", "extra")}
    wait_for(lambda: _running(cluster) >= both, 120, "web and extra running in both projects")
    for project in PROJECTS:
        got = cluster.shoal("service", "exec", "web", "-p", project, "--", "hostname")
        assert got.returncode == 0 and got.stdout.strip() == "web-1", got.stderr
    ambiguous = cluster.shoal("service", "exec", "web", "--", "hostname")
    assert ambiguous.returncode == 1 and len(ambiguous.stderr.splitlines()) == 1
    assert "service web exists in projects" in ambiguous.stderr and "proja, projb" in ambiguous.stderr
    ids = {str(t["id"]) for t in cluster.shoal_json("ps") if t["project"] in PROJECTS}
    assert {i.split("-web-")[0] for i in ids if "-web-" in i} == set(PROJECTS)


def test_prune_removes_a_service_deleted_from_the_file(two: tuple[Sandbox, Path]) -> None:
    cluster, folder = two
    (folder / "web.yaml").write_text(_compose(cluster.status["registry"], "web"))
    listed = cluster.shoal("deploy", "-f", str(folder / "web.yaml"), "--project", "proja", timeout=300)
    assert listed.returncode == 0 and "remove with --prune): extra" in listed.stderr
    assert ("proja", "extra") in _running(cluster)
    _deploy(cluster, folder / "web.yaml", "proja", "--prune")
    wait_for(lambda: ("proja", "extra") not in _running(cluster), 60, "proja's extra stopped")
    assert {("proja", "web"), ("projb", "web"), ("projb", "extra")} <= _running(cluster)
    gone = cluster.shoal("service", "inspect", "extra", "-p", "proja")
    assert gone.returncode == 1 and "service extra not found in project proja" in gone.stderr

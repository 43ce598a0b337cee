"""Projects as namespaces, the CLI against a real server (PostgreSQL): two projects with the same
service names side by side, the ambiguity error, -p/--project, deploy --prune and --dry-run, and
`shoal project ls|rm`."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.cli.conftest import Shoal

APP = """services:
  web:
    image: registry.shx:5000/web:1
  db:
    image: registry.shx:5000/db:1
"""


def _deploy(shoal: Shoal, tmp_path: Path, project: str, text: str, *flags: str) -> dict[str, object]:
    path = tmp_path / f"{project}.yaml"
    path.write_text(text)
    got = shoal("deploy", "-f", str(path), "-p", project, "--detach", "-o", "json", *flags)
    assert got.exit_code == 0, got.stderr
    return dict(json.loads(got.stdout))


def test_two_projects_with_the_same_service_names_side_by_side(shoal: Shoal, tmp_path: Path) -> None:
    _deploy(shoal, tmp_path, "alpha", APP)
    _deploy(shoal, tmp_path, "beta", APP.replace("web:1", "web:2"))
    listed = json.loads(shoal("service", "ls", "-o", "json").stdout)
    assert sorted((s["project"], s["name"], s["image"]) for s in listed) == [
        ("alpha", "db", "registry.shx:5000/db:1"),
        ("alpha", "web", "registry.shx:5000/web:1"),
        ("beta", "db", "registry.shx:5000/db:1"),
        ("beta", "web", "registry.shx:5000/web:2"),
    ]
    table = shoal("service", "ls").stdout
    assert "PROJECT" in table.upper() and "alpha" in table and "beta" in table
    # -p picks one; the qualified name too
    inspected = json.loads(shoal("service", "inspect", "web", "-p", "beta", "-o", "json").stdout)
    assert (inspected["project"], inspected["name"], inspected["image"]) == (
        "beta",
        "web",
        "registry.shx:5000/web:2",
    )
    qualified = json.loads(shoal("service", "inspect", "alpha.web", "-o", "json").stdout)
    assert (qualified["project"], qualified["image"]) == ("alpha", "registry.shx:5000/web:1")
    scaled = shoal("service", "scale", "web=2", "--project", "alpha")
    assert scaled.exit_code == 0, scaled.stderr
    beta = json.loads(shoal("service", "inspect", "web", "-p", "beta", "-o", "json").stdout)
    assert beta["replicas"] == 1
    # project ls
    projects = json.loads(shoal("project", "ls", "-o", "json").stdout)
    assert projects == [
        {"name": "alpha", "services": ["db", "web"]},
        {"name": "beta", "services": ["db", "web"]},
    ]


def test_an_ambiguous_short_name_is_one_line_listing_the_projects(shoal: Shoal, tmp_path: Path) -> None:
    _deploy(shoal, tmp_path, "alpha", APP)
    _deploy(shoal, tmp_path, "beta", APP)
    _deploy(shoal, tmp_path, "gamma", "services:\n  solo:\n    image: registry.shx:5000/web:1\n")
    for argv in (["service", "inspect", "web"], ["service", "restart", "db"], ["service", "rm", "web"]):
        got = shoal(*argv)
        assert got.exit_code == 1 and len(got.stderr.splitlines()) == 1, got.stderr
        assert "exists in projects alpha, beta" in got.stderr and "-p/--project" in got.stderr
    # unique in one project: the short name is enough
    assert json.loads(shoal("service", "inspect", "solo", "-o", "json").stdout)["project"] == "gamma"
    missing = shoal("service", "inspect", "web", "-p", "gamma")
    assert missing.exit_code == 1 and missing.stderr.strip().endswith(
        "service web not found in project gamma"
    )
    hostile = shoal("service", "inspect", "../web", "-p", "a b")
    assert hostile.exit_code == 1 and len(hostile.stderr.splitlines()) == 1
    # nothing was removed by the refused rm
    assert len(json.loads(shoal("service", "ls", "-o", "json").stdout)) == 5


def test_deploy_lists_orphans_and_prune_removes_them(shoal: Shoal, tmp_path: Path) -> None:
    _deploy(shoal, tmp_path, "alpha", APP)
    _deploy(shoal, tmp_path, "beta", APP)
    only_web = "services:\n  web:\n    image: registry.shx:5000/web:1\n"
    kept = _deploy(shoal, tmp_path, "alpha", only_web)
    assert kept["orphans"] == ["db"] and kept["pruned"] == []
    plain = shoal("deploy", "-f", str(tmp_path / "alpha.yaml"), "-p", "alpha", "--detach")
    assert "not in the file any more (remove with --prune): db" in plain.stderr
    pruned = _deploy(shoal, tmp_path, "alpha", only_web, "--remove-orphans")
    assert pruned["pruned"] == ["db"]
    names = sorted((s["project"], s["name"]) for s in json.loads(shoal("service", "ls", "-o", "json").stdout))
    assert names == [("alpha", "web"), ("beta", "db"), ("beta", "web")]  # beta's db untouched


def test_dry_run_prints_each_service_new_changed_unchanged_to_prune(shoal: Shoal, tmp_path: Path) -> None:
    _deploy(shoal, tmp_path, "alpha", APP)
    path = tmp_path / "next.yaml"
    web2 = "  web:\n    image: registry.shx:5000/web:2\n"
    path.write_text("services:\n" + web2 + "  cache:\n    image: registry.shx:5000/web:1\n")
    got = shoal("deploy", "-f", str(path), "-p", "alpha", "--dry-run")
    assert got.exit_code == 0, got.stderr
    lines = got.stdout.splitlines()
    assert lines[0] == f"{path} is valid: project alpha"
    assert "cache: new" in lines and "web: changed" in lines and "db: prune" in lines
    assert any("image" in line and "web:1" in line and "web:2" in line for line in lines)
    same = shoal("deploy", "-f", str(path), "-p", "alpha", "--dry-run", "-o", "json")
    changes = {c["name"]: c["change"] for c in json.loads(same.stdout)["changes"]}
    assert changes == {"cache": "new", "web": "changed", "db": "prune"}
    # nothing stored
    inspected = json.loads(shoal("service", "inspect", "web", "-p", "alpha", "-o", "json").stdout)
    assert inspected["revision"] == 1 and inspected["image"] == "registry.shx:5000/web:1"
    _deploy(shoal, tmp_path, "alpha", APP)
    again = json.loads(
        shoal("deploy", "-f", str(tmp_path / "alpha.yaml"), "-p", "alpha", "--dry-run", "-o", "json").stdout
    )
    assert {c["change"] for c in again["changes"]} == {"unchanged"}


def test_project_rm_removes_only_its_services(shoal: Shoal, tmp_path: Path) -> None:
    _deploy(shoal, tmp_path, "alpha", APP)
    _deploy(shoal, tmp_path, "beta", APP)
    got = shoal("project", "rm", "alpha")
    assert got.exit_code == 0, got.stderr
    assert got.stdout.strip() == "removed project alpha: db, web"
    names = sorted((s["project"], s["name"]) for s in json.loads(shoal("service", "ls", "-o", "json").stdout))
    assert names == [("beta", "db"), ("beta", "web")]
    again = shoal("project", "rm", "alpha")
    assert again.exit_code == 1 and again.stderr.strip() == "error: project alpha not found"
    assert shoal("service", "inspect", "web", "-o", "json").exit_code == 0  # unique again


def test_dry_run_of_a_new_project_says_what_would_change_and_stores_nothing(
    shoal: Shoal, tmp_path: Path
) -> None:
    path = tmp_path / "fresh.yaml"
    path.write_text(APP)
    got = shoal("deploy", "-f", str(path), "-p", "fresh", "--dry-run")
    assert got.exit_code == 0, got.stderr
    assert got.stdout.splitlines() == [f"{path} is valid: project fresh", "db: new", "web: new"]
    answer = json.loads(shoal("deploy", "-f", str(path), "-p", "fresh", "--dry-run", "-o", "json").stdout)
    assert {c["name"]: c["change"] for c in answer["changes"]} == {"db": "new", "web": "new"}
    listed = json.loads(shoal("service", "ls", "-o", "json").stdout)
    assert [s for s in listed if s["project"] == "fresh"] == []

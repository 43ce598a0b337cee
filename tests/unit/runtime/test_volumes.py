"""Named volumes on a node: one directory per project, externals by name, old layout taken over."""

from __future__ import annotations

from pathlib import Path

from shoal.agent.runtime.volumes import ensure_volume, volume_path
from shoal.model.container import Mount


def vol(name: str, external: bool = False) -> Mount:
    return Mount(kind="volume", target="/data", source=name, external=external)


def test_two_projects_volumes_of_one_name_never_share_a_directory(tmp_path: Path) -> None:
    a, b = ensure_volume(tmp_path, "a", vol("data")), ensure_volume(tmp_path, "b", vol("data"))
    (a / "a-only").write_text("a")
    assert a != b and not (b / "a-only").exists()
    assert volume_path(tmp_path, "a", vol("data")) == tmp_path / "@a" / "data"


def test_an_external_volume_is_shared_by_its_name(tmp_path: Path) -> None:
    assert ensure_volume(tmp_path, "a", vol("shared", True)) == ensure_volume(
        tmp_path, "b", vol("shared", True)
    )
    assert volume_path(tmp_path, "a", vol("shared", True)) == tmp_path / "shared"


def test_the_old_layouts_directory_is_taken_over_by_the_first_project_that_mounts_it(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rows").write_text("kept")
    got = ensure_volume(tmp_path, "p", vol("data"))
    assert (got / "rows").read_text() == "kept" and not (tmp_path / "data").exists()
    assert not (ensure_volume(tmp_path, "q", vol("data")) / "rows").exists()


def test_compose_marks_external_volumes() -> None:
    from shoal.model.compose import parse_compose
    from shoal.model.specs import to_container_spec

    text = (
        "services:\n  db:\n    image: db\n    volumes: [own:/a, shared:/b]\n"
        "volumes:\n  own: {}\n  shared: {external: true, name: team-data}\n"
    )
    spec = to_container_spec(parse_compose(text, "p").services["db"], 1, 1)
    assert [(m.source, m.external) for m in spec.mounts] == [("own", False), ("team-data", True)]

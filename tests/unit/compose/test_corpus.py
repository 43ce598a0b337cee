"""Real Compose files (tests/data/compose, each with its source in sources.json) go through the
CLI's preparation and the parser as `shoal deploy --dry-run` does: each is accepted, or refused
only for reasons docs/compose.md lists, every fault one line with its key path."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from shoal.model.compose_source import Disk, Options, prepare
from shoal.model.compose_types import ComposeError

ROOT = Path(__file__).resolve().parents[2] / "data" / "compose"
DOCS = Path(__file__).resolve().parents[3] / "docs" / "compose.md"
SOURCES = json.loads((ROOT / "sources.json").read_text())
# Files another file names (extends, .env): not deployed on their own.
COMPANIONS = {p for p in SOURCES if "/subdir/" in p or p.endswith(".env")}
DEPLOYABLE = sorted(p for p in SOURCES if p not in COMPANIONS)


def refusal_reasons() -> list[str]:
    """The phrases of docs/compose.md's "Why a file is refused" list (each in backquotes)."""
    text = DOCS.read_text()
    section = text.split("## Why a file is refused", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^- `([^`]+)`", section, flags=re.M)


def disk_of(folder: Path) -> Disk:
    def read(rel: str) -> bytes | None:
        try:
            return (folder / rel).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    return Disk(read=read, is_dir=lambda rel: (folder / rel).is_dir())


def test_the_corpus_is_large_and_every_file_has_its_source() -> None:
    assert len(DEPLOYABLE) >= 50
    on_disk = {str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file() and p.name != "sources.json"}
    assert on_disk == set(SOURCES)
    for path, source in SOURCES.items():
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", source["repository"]), path
        assert re.fullmatch(r"[0-9a-f]{40}", source["commit"]), path
        assert source["path"].endswith(Path(path).name), path


@pytest.mark.parametrize("path", DEPLOYABLE)
def test_each_file_is_accepted_or_refused_for_a_documented_reason(path: str) -> None:
    file = ROOT / path
    options = Options(shell={}, dir_name=file.parent.name)
    try:
        ready = prepare(file.read_text(), disk_of(file.parent), options)
    except ComposeError as refused:
        reasons = refusal_reasons()
        for line in refused.errors:
            assert "\n" not in line
            assert re.match(r"^[\w.\[\]-]+: .+", line) or line.startswith("no project name"), line
            assert any(reason in line for reason in reasons), f"undocumented refusal: {line}"
        text = file.read_text()
        if "build:" not in text:
            assert refused.errors  # a file without build: is refused only for documented reasons
        return
    assert ready.spec.services
    assert ready.project


def test_most_files_without_build_are_accepted() -> None:
    accepted = 0
    for path in DEPLOYABLE:
        file = ROOT / path
        try:
            prepare(file.read_text(), disk_of(file.parent), Options(shell={}, dir_name=file.parent.name))
        except ComposeError:
            continue
        accepted += 1
    assert accepted >= 9

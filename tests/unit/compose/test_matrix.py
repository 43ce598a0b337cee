"""docs/compose.md's support matrix against the parser: every key the schema models accept is in
the doc's tables with a status, and every key the doc lists is one the parser knows.

Walks `Document` (top level), `ServiceSection` and `DeploySection` and, inside each documented
key, the nested models' keys (each must be named in that key's row).
"""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from shoal.model.compose_schema import DeploySection
from shoal.model.compose_service import UNSUPPORTED, ServiceSection
from shoal.model.compose_top import UNSUPPORTED_TOP, Document

DOC = Path(__file__).resolve().parents[3] / "docs" / "compose.md"

# Models reached only by expanding a scalar (`restart: on-failure:3`): their fields are shoal's
# own reading of that scalar, not keys a user writes.
PARSED_SCALARS = {("services", "restart")}


def _tables() -> dict[str, dict[str, str]]:
    """The doc's tables by section heading: {heading: {key: support text}}."""
    tables: dict[str, dict[str, str]] = {}
    heading = ""
    for line in DOC.read_text().splitlines():
        if line.startswith("## "):
            heading = line[3:].strip().strip("`").lower()
        elif line.startswith("| `"):
            keys_cell, _, support = line[1:].partition(" | ")
            support = support.rstrip(" |")
            assert support, f"{heading}: row {keys_cell!r} has no status"
            for key in re.findall(r"`([^`]+)`", keys_cell):
                tables.setdefault(heading, {})[key] = support
    return tables


TABLES = _tables()


def _models(annotation: object) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (through Annotated, list, dict, unions)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    if typing.get_origin(annotation) is not None or isinstance(annotation, types.UnionType):
        for arg in typing.get_args(annotation):
            found += _models(arg)
    return found


def _keys(model: type[BaseModel]) -> dict[str, list[type[BaseModel]]]:
    return {(f.alias or name): _models(f.annotation) for name, f in model.model_fields.items()}


def _nested_keys(models: list[type[BaseModel]]) -> set[str]:
    """Every key of these models and of the models inside them."""
    keys: set[str] = set()
    for model in models:
        for key, inner in _keys(model).items():
            keys.add(key)
            keys |= _nested_keys(inner)
    return keys


def _named_in(text: str) -> set[str]:
    """The identifiers written in backticks in a row's support text."""
    spans = re.findall(r"`([^`]+)`", text)
    return {word for span in spans for word in re.findall(r"[A-Za-z_][A-Za-z0-9_-]*", span)}


def _documented(section: str, key: str) -> str | None:
    table = TABLES.get(section, {})
    if key in table:
        return table[key]
    if section == "services" and key == "deploy" and "deploy" in TABLES:
        return "see the deploy table"
    if section == "deploy":  # dotted rows: `resources.limits`, `placement.constraints`
        parts = [f"`{name}` {text}" for name, text in table.items() if name.split(".")[0] == key]
        return " ".join(parts) or None
    return None


SECTIONS = {"top level": Document, "services": ServiceSection, "deploy": DeploySection}


def test_the_doc_has_the_three_tables() -> None:
    assert set(SECTIONS) <= set(TABLES), sorted(TABLES)


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_every_key_the_schema_accepts_is_documented(section: str) -> None:
    missing = [key for key in _keys(SECTIONS[section]) if _documented(section, key) is None]
    assert not missing, f"{section}: keys the parser accepts but docs/compose.md does not list: {missing}"


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_every_nested_key_is_named_in_its_row(section: str) -> None:
    unnamed: list[str] = []
    for key, models in _keys(SECTIONS[section]).items():
        if (section, key) in PARSED_SCALARS or key in ("deploy", "services"):  # their own tables
            continue
        row = _documented(section, key) or ""
        inner = _nested_keys([m for m in models if m is not DeploySection])
        unnamed += [f"{key}.{sub}" for sub in sorted(inner - _named_in(row))]
    assert not unnamed, f"{section}: nested keys missing from their row in docs/compose.md: {unnamed}"


def test_every_refused_key_is_documented() -> None:
    assert not set(UNSUPPORTED) - set(TABLES["services"]), "service keys refused but not in the doc"
    assert not set(UNSUPPORTED_TOP) - set(TABLES["top level"]), "top-level keys refused but not in the doc"


def _parser_knows(section: str, key: str) -> bool:
    if section == "top level":
        return key in _keys(Document) or key in UNSUPPORTED_TOP or key == "x-*"
    if section == "services":
        return key in _keys(ServiceSection) or key in UNSUPPORTED
    model: type[BaseModel] = DeploySection
    for part in key.split("."):
        fields = _keys(model)
        if part not in fields:
            return False
        inner = fields[part]
        model = inner[0] if inner else model
    return True


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_every_documented_key_exists_in_the_parser(section: str) -> None:
    unknown = [key for key in TABLES[section] if not _parser_knows(section, key)]
    assert not unknown, f"{section}: docs/compose.md lists keys the parser does not know: {unknown}"


def test_the_walk_sees_nested_keys() -> None:
    """The checks above are only as good as the walk: it must reach a known deep key."""
    assert "selinux" in _nested_keys(_keys(ServiceSection)["volumes"])
    assert "spread" in _nested_keys(_keys(DeploySection)["placement"])

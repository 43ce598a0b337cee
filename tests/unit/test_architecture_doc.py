"""docs/architecture.md cannot rot: every path and every dotted name it cites exists.

Paths (`shoal/agent/loop.py`, `shoal/control/store/`, `tests/...`) must be files or folders of
the repository. Dotted names (`shoal.control.deploy.store`, `shoal.agent.loop.Agent.accept`)
must resolve: the longest prefix that is a module, then a name the module defines (a class,
function, assignment or import) and, below a class, one of its members. Read from the source
(ast), nothing imported. When this fails, fix the page in the same change as the code.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
DOC = ROOT / "docs" / "architecture.md"
PATH = re.compile(r"(?<![\w/.@<-])((?:shoal|tests|benchmarks|scripts)/[\w./-]*\w/?)")
DOTTED = re.compile(r"(?<![\w./-])(shoal(?:\.[A-Za-z_]\w*)+)")
NOT_CODE = {"shoal.internal", "shoal.json"}  # the cluster's DNS domain; the runtime's record file


def cited(pattern: re.Pattern[str]) -> list[str]:
    return sorted(set(pattern.findall(DOC.read_text())) - NOT_CODE)


def module_file(parts: list[str]) -> Path | None:
    base = ROOT.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@cache
def names_in(body_of: Path, cls: str = "") -> frozenset[str]:
    """The names a module defines at its top level (or a class of it defines in its body)."""
    body = ast.parse(body_of.read_text()).body
    if cls:
        found = [n for n in body if isinstance(n, ast.ClassDef) and n.name == cls]
        body = found[0].body if found else []
    names: set[str] = set()
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return frozenset(names)


def unresolved(dotted: str) -> str | None:
    """Why a dotted name does not resolve (None when it does)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        found = module_file(parts[:cut])
        if found is not None:
            break
    else:
        return "no such module"
    rest = parts[cut:]
    if not rest:
        return None
    if rest[0] not in names_in(found):
        return f"{'.'.join(parts[:cut])} defines no {rest[0]}"
    if len(rest) > 1 and rest[1] not in names_in(found, rest[0]):
        return f"{rest[0]} has no member {rest[1]}"
    return None


def test_the_page_cites_code() -> None:
    assert len(cited(PATH)) > 40 and len(cited(DOTTED)) > 40


@pytest.mark.parametrize("path", cited(PATH))
def test_cited_path_exists(path: str) -> None:
    assert (ROOT / path).exists(), f"docs/architecture.md cites {path}, which does not exist"


@pytest.mark.parametrize("dotted", cited(DOTTED))
def test_cited_name_resolves(dotted: str) -> None:
    assert unresolved(dotted) is None, f"docs/architecture.md cites {dotted}: {unresolved(dotted)}"


@pytest.mark.parametrize(
    ("dotted", "why"),
    [
        ("shoal.agent.loop.Agent.accept", None),
        ("shoal.control.store", None),
        ("shoal.agent.nowhere", "shoal.agent defines no nowhere"),
        ("shoal.nowhere.at_all", "shoal defines no nowhere"),
        ("shoal.agent.loop.Nobody", "shoal.agent.loop defines no Nobody"),
        ("shoal.agent.loop.Agent.nothing", "Agent has no member nothing"),
    ],
)
def test_the_resolver_itself(dotted: str, why: str | None) -> None:
    assert unresolved(dotted) == why

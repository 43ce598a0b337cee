"""One house: each class name of `shoal/` is defined in one module only.

Two classes of one name in two modules are either the same contract written twice (they drift:
one copy of the update policy once lost `max_failure_ratio`) or two things one name hides.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SHOAL = Path(__file__).resolve().parents[2] / "shoal"


def class_modules(root: Path) -> dict[str, set[str]]:
    """Class name → the modules (paths relative to `root`) that define a class of that name."""
    found: dict[str, set[str]] = defaultdict(set)
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                found[node.name].add(str(path.relative_to(root)))
    return found


def test_the_walk_finds_a_name_defined_twice(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("class Plan:\n    pass\n")
    (tmp_path / "b.py").write_text("def f():\n    class Plan:\n        pass\n")
    assert class_modules(tmp_path)["Plan"] == {"a.py", "b.py"}


def test_no_class_name_is_defined_in_two_modules() -> None:
    twice = {name: sorted(where) for name, where in class_modules(SHOAL).items() if len(where) > 1}
    assert not twice, "class names defined in more than one module of shoal/: " + "; ".join(
        f"{name} in {', '.join(where)}" for name, where in sorted(twice.items())
    )

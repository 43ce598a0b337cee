"""YAML for the deploy file: load it keeping line numbers, and turn validation errors into one line.

Under `shoal.model.compose`: ruamel.yaml's round-trip loader keeps each key's line (`.lc`), so an
error found by the pydantic schema at a key path (`services.web.ports[0]`) can name its line.
The loader composes with a budget (`compose_budget`): a hostile file is refused while it is read,
before anything walks it expanded; every message is cut to `MAX_MESSAGE` characters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from shoal.errors import first_line
from shoal.model.compose_budget import BudgetComposer, BudgetScanner
from shoal.model.compose_types import ComposeError

Loc = Sequence[int | str]
_MESSAGES = {
    "extra_forbidden": "unknown key",
    "missing": "required key missing",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "dict_type": "must be a mapping",
    "list_type": "must be a list",
}


def load(text: str) -> Any:
    """The document as ruamel's CommentedMap (a dict that knows its lines); ComposeError if invalid."""
    yaml = YAML(typ="rt", pure=True)
    yaml.Composer, yaml.Scanner = BudgetComposer, BudgetScanner
    try:
        return yaml.load(text)
    except MarkedYAMLError as bad:
        mark = bad.problem_mark or bad.context_mark
        line = f" (line {mark.line + 1})" if mark is not None else ""
        what = first_line(bad.problem or bad.context or "syntax error")[:160]
        raise ComposeError(f"invalid YAML: {what}{line}") from None
    except YAMLError as bad:
        raise ComposeError(f"invalid YAML: {first_line(bad)[:160]}") from None
    except (TypeError, ValueError, RecursionError) as bad:  # e.g. a mapping as a key, absurd nesting
        raise ComposeError(f"invalid YAML: {first_line(bad)[:160]}") from None


def locate(root: Any, loc: Loc) -> tuple[list[int | str], int | None]:
    """Follow an error location through the document: the path that exists (plus a missing last
    key) and the 1-based line of the deepest key or item reached. Union tags pydantic adds to a
    location (names that are not keys of the document) are skipped."""
    path: list[int | str] = []
    node, line = root, None
    for part in loc:
        found, line_here = _step(node, part)
        if found is _MISSING:
            if isinstance(part, str) and isinstance(node, dict) and part == loc[-1]:
                path.append(part)
            continue
        path.append(part)
        node, line = found, line_here if line_here is not None else line
    return path, line


_MISSING = object()


def _step(node: Any, part: int | str) -> tuple[Any, int | None]:
    if isinstance(node, dict) and isinstance(part, str) and part in node:
        return node[part], _line_of(node, part, key=True)
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part], _line_of(node, part, key=False)
    return _MISSING, None


def _line_of(node: Any, part: int | str, *, key: bool) -> int | None:
    lc = getattr(node, "lc", None)
    if lc is None:
        return None
    try:
        position = lc.key(part) if key else lc.item(part)
    except (KeyError, IndexError, TypeError):
        return None
    return int(position[0]) + 1


def render_path(path: Sequence[int | str]) -> str:
    """["services", "web", "ports", 0] → services.web.ports[0]"""
    out = ""
    for part in path:
        name = str(part)[:80]  # a key can be as long as the file: keep the line readable
        out += f"[{part}]" if isinstance(part, int) else (f".{name}" if out else name)
    return out


def error_at(root: Any, loc: Loc, message: str) -> ComposeError:
    """One line: `path: message (line N)`."""
    path, line = locate(root, loc)
    where = f" (line {line})" if line is not None else ""
    prefix = f"{_cut(render_path(path), 72)}: " if path else ""
    return ComposeError(f"{prefix}{_cut(message, 150)}{where}")


def _cut(text: str, size: int) -> str:
    """The head of a long path or message, so the line number after it survives the cap."""
    line = first_line(text)
    return line if len(line) <= size else f"{line[: size - 1]}…"


def from_validation(root: Any, error: ValidationError, base: Loc = ()) -> ComposeError:
    """The first error pydantic found, as one line naming the key path and its line."""
    first = _most_specific(error.errors())
    return error_at(root, [*base, *first["loc"]], _message(first))


def _most_specific(errors: list[ErrorDetails]) -> ErrorDetails:
    """Prefer a custom (ValueError) message, then the deepest location: clearer for unions."""
    return min(errors, key=lambda e: (e["type"] != "value_error", -len(e["loc"])))


def _message(error: ErrorDetails) -> str:
    if error["type"] in _MESSAGES:
        return _MESSAGES[error["type"]]
    text = error["msg"].removeprefix("Value error, ")
    return text[:1].lower() + text[1:]

"""Every fault of a deploy file at once: each one line with its key path and line, sorted by line.

Under `shoal.model.compose_build`: validation errors from pydantic, refusals of known-unsupported
keys ("not supported by shoal: do X instead"), typos ("unknown key; did you mean `services`?")
and the cross-checks all go into one `Problems`, raised as one ComposeError. Pure.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from shoal.model.compose_types import ComposeError
from shoal.model.compose_yaml import Loc, locate, render_path

_MESSAGES = {
    "missing": "required key missing",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "dict_type": "must be a mapping",
    "list_type": "must be a list",
}
MAX_ERRORS = 100  # a hostile file cannot make an answer of a million lines


class Problems:
    """The faults found in one document; `raise_all()` raises them as one ComposeError."""

    def __init__(self, root: Any) -> None:
        self.root = root
        self.found: dict[str, int] = {}  # line of text -> its line number (for the order)

    def add(self, loc: Loc, message: str) -> None:
        path, line = locate(self.root, loc)
        where = f" (line {line})" if line is not None else ""
        prefix = f"{render_path(path)}: " if path else ""
        self.found.setdefault(f"{prefix}{message}{where}", line or 0)

    def has(self, loc: Loc) -> bool:
        """Whether a fault was already found at this key path (a more precise one, say)."""
        prefix = render_path(locate(self.root, loc)[0]) + ": "
        return any(text.startswith(prefix) for text in self.found)

    def note(self, message: str) -> None:
        """A fault of the whole document (no key to point at)."""
        self.found.setdefault(message, 0)

    def __bool__(self) -> bool:
        return bool(self.found)

    def lines(self) -> list[str]:
        ordered = sorted(self.found, key=lambda text: self.found[text])
        if len(ordered) > MAX_ERRORS:
            return [*ordered[:MAX_ERRORS], f"... and {len(ordered) - MAX_ERRORS} more errors"]
        return ordered

    def raise_all(self) -> None:
        if self.found:
            lines = self.lines()
            raise ComposeError(lines[0], lines)


def add_validation(
    problems: Problems, error: ValidationError, model: type[BaseModel], base: Loc, refused: dict[str, str]
) -> None:
    """Every error of one validation, once per key path (the most specific message for each)."""
    best: dict[tuple[str, ...], ErrorDetails] = {}
    for item in error.errors():
        key = tuple(str(p) for p in locate(problems.root, [*base, *item["loc"]])[0])
        if key not in best or _rank(item) < _rank(best[key]):
            best[key] = item
    for item in best.values():
        problems.add([*base, *item["loc"]], _message(item, model, refused))


def _rank(error: ErrorDetails) -> tuple[bool, int]:
    return error["type"] != "value_error", -len(error["loc"])


def _message(error: ErrorDetails, model: type[BaseModel], refused: dict[str, str]) -> str:
    if error["type"] == "extra_forbidden":
        return unknown_key(error["loc"], model, refused)
    if error["type"] in _MESSAGES:
        return _MESSAGES[error["type"]]
    text = error["msg"].removeprefix("Value error, ")
    return text[:1].lower() + text[1:]


def unknown_key(loc: Sequence[int | str], model: type[BaseModel], refused: dict[str, str]) -> str:
    """ "not supported by shoal: <what instead>" for a real Compose key; "unknown key" with the
    closest known key for a typo."""
    key = str(loc[-1])
    parent = model_at(model, loc[:-1])
    if parent is model and key in refused:
        return f"not supported by shoal: {refused[key]}"
    known = sorted(keys_of(parent) | (set(refused) if parent is model else set())) if parent else []
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
    return f"unknown key; did you mean `{close[0]}`?" if close else "unknown key"


def keys_of(model: type[BaseModel]) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


def model_at(model: type[BaseModel], loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The schema model that a location inside `model` points at (None: not a model)."""
    current: Any = model
    for part in loc:
        if _is_model(current):
            field = _field(current, str(part))
            if field is None:
                return None
            current = field
            continue
        current = _element(current)
        if current is None:
            return None
    current = _unwrap(current)
    return current if _is_model(current) else None


def _field(model: type[BaseModel], name: str) -> Any:
    for field_name, field in model.model_fields.items():
        if name in (field_name, field.alias):
            return _unwrap(field.annotation)
    return None


def _element(annotation: Any) -> Any:
    """The item type of a list or the value type of a dict annotation."""
    annotation = _unwrap(annotation)
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin is list and args:
        return _unwrap(args[0])
    if origin is dict and len(args) == 2:
        return _unwrap(args[1])
    return None


def _unwrap(annotation: Any) -> Any:
    """Annotated[X, ...] → X; X | None → X (the first model of a union)."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        models = [m for m in members if _is_model(_unwrap(m))]
        return _unwrap((models or members or [None])[0])
    return annotation


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)

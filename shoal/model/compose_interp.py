"""Compose's variable interpolation, exactly as `docker compose` does it (pure).

First step after loading a deploy file in the CLI (`shoal.model.compose_source`): every string
value of the document is expanded from the environment (the shell, then `.env` or `--env-file`):
`$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}`, `${VAR?message}`,
`${VAR:+replacement}`, `${VAR+replacement}`, and `$$` for a literal `$`. Defaults and
replacements are themselves interpolated. An unset variable becomes an empty string with a
warning; a `?` form with the variable missing is an error. The server stores the result.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class InterpolationError(ValueError):
    """A `${VAR:?message}` whose variable is missing, or a malformed `${...}`."""


@dataclass
class Expander:
    """Expands strings from `env`; remembers the unset variables it defaulted to ""."""

    env: Mapping[str, str]
    unset: list[str] = field(default_factory=list)

    def expand(self, text: str) -> str:
        out, _ = self._scan(text, 0, stop=None)
        return out

    def _scan(self, text: str, pos: int, stop: str | None) -> tuple[str, int]:
        """Expand from `pos` up to an unnested `stop` character (or the end); (text, end)."""
        parts: list[str] = []
        while pos < len(text):
            char = text[pos]
            if stop is not None and char == stop:
                return "".join(parts), pos
            if char != "$":
                parts.append(char)
                pos += 1
                continue
            piece, pos = self._dollar(text, pos)
            parts.append(piece)
        if stop is not None:
            raise InterpolationError(f'invalid interpolation format for "{text[:80]}": missing "}}"')
        return "".join(parts), pos

    def _dollar(self, text: str, pos: int) -> tuple[str, int]:
        nxt = text[pos + 1 : pos + 2]
        if nxt == "$":
            return "$", pos + 2
        if nxt == "{":
            return self._braced(text, pos + 2)
        found = _NAME.match(text, pos + 1)
        if found is None:
            return "$", pos + 1  # a lone `$` stays, as Compose leaves it
        return self._value(found.group()), found.end()

    def _braced(self, text: str, pos: int) -> tuple[str, int]:
        found = _NAME.match(text, pos)
        if found is None:
            raise InterpolationError(f'invalid interpolation format for "{text[:80]}"')
        name, pos = found.group(), found.end()
        op = _operator(text, pos)
        if op == "}":
            return self._value(name), pos + 1
        if not op:
            raise InterpolationError(f'invalid interpolation format for "{text[:80]}"')
        word, end = self._scan(text, pos + len(op), stop="}")
        return _apply(op, name, word, self.env, self._value), end + 1

    def _value(self, name: str) -> str:
        if name in self.env:
            return self.env[name]
        if name not in self.unset:
            self.unset.append(name)
        return ""


def _operator(text: str, pos: int) -> str:
    for op in (":-", ":?", ":+", "-", "?", "+", "}"):
        if text.startswith(op, pos):
            return op
    return ""


def _apply(op: str, name: str, word: str, env: Mapping[str, str], value: Callable[[str], str]) -> str:
    present, nonempty = name in env, bool(env.get(name))
    if op == ":-":
        return env[name] if nonempty else word
    if op == "-":
        return env[name] if present else word
    if op == ":+":
        return word if nonempty else ""
    if op == "+":
        return word if present else ""
    if (op == ":?" and not nonempty) or (op == "?" and not present):
        raise InterpolationError(
            f"required variable {name} is missing a value: {word or name + ' is not set'}"
        )
    return value(name)


Report = Callable[[list[int | str], str], None]


def interpolate(node: Any, expander: Expander, report: Report, path: list[int | str] | None = None) -> None:
    """Expand every string value of a loaded document in place (keys are left as written).

    `report(path, message)` receives each error; the walk goes on, so every one is found.
    """
    where = path or []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in list(items):
        here = [*where, key]
        if isinstance(value, str):
            try:
                node[key] = _same_style(value, expander.expand(value))
            except InterpolationError as bad:
                report(here, str(bad))
        else:
            interpolate(value, expander, report, here)


def _same_style(old: str, new: str) -> str:
    """A ruamel scalar string (quoted, folded) keeps its type only when unchanged."""
    return old if new == old else new


def unset_warnings(names: list[str]) -> list[str]:
    """Compose's own words for each variable that was not set."""
    return [f'the "{n}" variable is not set: defaulting to a blank string' for n in names]

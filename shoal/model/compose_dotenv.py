"""`.env`, `--env-file` and a service's `env_file:`, read as Compose reads them (pure).

Used by `shoal.model.compose_source` (the CLI reads the files). Lines are `KEY=VALUE` or
`export KEY=VALUE`; `#` starts a comment line; an unquoted value ends at ` #` and is trimmed;
`'single'` quotes are literal; `"double"` quotes may span lines and take `\\n`, `\\t`, `\\"` and
`\\\\`; unquoted and double-quoted values interpolate `${VAR}` from the keys above them and the
environment. A bare `KEY` takes the environment's value (or is skipped). `format: raw` takes each
value exactly as written after the first `=`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from shoal.model.compose_interp import Expander, InterpolationError

_KEY = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_.\-]*)\s*(=?)\s*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


class DotenvError(ValueError):
    """A line that is not `KEY=VALUE`; the message names the line number."""


def parse_dotenv(text: str, env: Mapping[str, str] | None = None, raw: bool = False) -> dict[str, str]:
    """The variables an env file defines, in order."""
    outer = dict(env or {})
    found: dict[str, str] = {}
    lines = text.replace("\r\n", "\n").split("\n")
    index = 0
    while index < len(lines):
        line, number = lines[index].strip(), index + 1
        index += 1
        if not line or line.startswith("#"):
            continue
        key, has_value, rest = _split(line, number)
        if not has_value:
            if key in outer:
                found[key] = outer[key]
            continue
        if raw:
            found[key] = lines[index - 1].split("=", 1)[1]
            continue
        value, index = _value(rest, lines, index, number, {**outer, **found})
        found[key] = value
    return found


def _split(line: str, number: int) -> tuple[str, bool, str]:
    found = _KEY.match(line)
    if found is None or (not found.group(2) and found.end() != len(line)):
        raise DotenvError(f"line {number}: expected KEY=VALUE, got {line[:60]!r}")
    return found.group(1), bool(found.group(2)), line[found.end() :]


def _value(rest: str, lines: list[str], index: int, number: int, scope: Mapping[str, str]) -> tuple[str, int]:
    if rest.startswith("'"):
        end = rest.find("'", 1)
        if end < 0:
            raise DotenvError(f"line {number}: unterminated single quote")
        return rest[1:end], index
    if rest.startswith('"'):
        body, index = _double(rest[1:], lines, index, number)
        return _expand(body, scope, number), index
    text = re.split(r"\s#", rest, maxsplit=1)[0].strip()
    return _expand(text, scope, number), index


def _double(body: str, lines: list[str], index: int, number: int) -> tuple[str, int]:
    """The text up to the closing quote (continuing on following lines), escapes applied."""
    out: list[str] = []
    while True:
        pos = 0
        while pos < len(body):
            char = body[pos]
            if char == "\\" and pos + 1 < len(body):
                out.append(_ESCAPES.get(body[pos + 1], "\\" + body[pos + 1]))
                pos += 2
                continue
            if char == '"':
                return "".join(out), index
            out.append(char)
            pos += 1
        if index >= len(lines):
            raise DotenvError(f"line {number}: unterminated double quote")
        out.append("\n")
        body, index = lines[index], index + 1


def _expand(text: str, scope: Mapping[str, str], number: int) -> str:
    try:
        return Expander(scope).expand(text)
    except InterpolationError as bad:
        raise DotenvError(f"line {number}: {bad}") from None

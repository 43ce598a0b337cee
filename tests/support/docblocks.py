"""Reading the command blocks of the Markdown docs (pure): used by the unit test that parses every
`shoal ...` line of docs/*.md with the real CLI, and by the e2e test that runs docs/install.md.

A fenced block may follow a marker comment naming where it runs, the form docs/install.md uses:
``<!-- on: server home -->`` (run on each machine named), ``<!-- on: laptop; file: compose.yaml
-->`` (the block is that file's content, written on that machine), ``<!-- not run: why -->``.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})(.*)$")
_MARKER = re.compile(r"^\s*<!--\s*(.*?)\s*-->\s*$")
_SUBSTITUTION = re.compile(r"\$\([^()]*\)")  # $(date +%F): one word, not run here
_OPTIONAL = re.compile(r"\[([^\[\]]*)\]")  # synopsis brackets: [--to 0.3.0]


@dataclass(frozen=True)
class Block:
    """One fenced block: its info string, the marker comment above it (if any), its text."""

    info: str
    body: str
    line: int  # 1-based line of the opening fence
    marker: dict[str, str] = field(default_factory=dict)

    @property
    def machines(self) -> list[str]:
        return self.marker.get("on", "").split()

    @property
    def file(self) -> str:
        return self.marker.get("file", "")


def parse_marker(text: str) -> dict[str, str]:
    """`on: server home; file: compose.yaml` → {"on": "server home", "file": "compose.yaml"}."""
    found: dict[str, str] = {}
    for part in text.split(";"):
        key, sep, value = part.partition(":")
        if sep:
            found[key.strip()] = value.strip()
    return found


def blocks(markdown: str) -> list[Block]:
    """Every fenced block, with the marker comment on the last non-blank line before it."""
    lines = markdown.splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        fence = opening.group(2)
        end = next((j for j in range(index + 1, len(lines)) if lines[j].strip() == fence), len(lines))
        body = "\n".join(lines[index + 1 : end]) + "\n"
        found.append(Block(opening.group(3).strip(), body, index + 1, _marker_before(lines, index)))
        index = end + 1
    return found


def _marker_before(lines: list[str], index: int) -> dict[str, str]:
    for previous in reversed(lines[:index]):
        if previous.strip():
            match = _MARKER.match(previous)
            return parse_marker(match.group(1)) if match else {}
    return {}


def logical_lines(body: str) -> list[str]:
    """The block's shell lines, continuations (a trailing backslash) joined."""
    out: list[str] = []
    pending = ""
    for raw in body.splitlines():
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        out.append(pending + raw)
        pending = ""
    if pending:
        out.append(pending)
    return [line for line in out if line.strip()]


def shoal_argvs(body: str) -> list[list[str]]:
    """The arguments of every `shoal ...` command in a shell block (after `$ `, `VAR=x `, `&&`,
    `;` or `|`); comments and redirections dropped, `$(...)` one word, synopsis brackets opened."""
    found = []
    for line in logical_lines(body):
        text = _OPTIONAL.sub(r"\1", _SUBSTITUTION.sub("SUBST", line.removeprefix("$ ")))
        try:
            lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
            lexer.whitespace_split, lexer.commenters = True, "#"
            words = list(lexer)
        except ValueError:
            continue  # not shell (a YAML or zone-file line that happens to sit in a block)
        found += [argv[1:] for argv in _commands(words) if argv[:1] == ["shoal"]]
    return found


def _commands(words: list[str]) -> list[list[str]]:
    """Split at `&&`, `||`, `;`, `|`; drop redirections with their target, and leading `VAR=x`."""
    commands: list[list[str]] = [[]]
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word in ("&&", "||", ";", "|", "&"):
            commands.append([])
        elif set(word) <= set("<>&"):
            skip = True  # `< file`, `> file`, `>> file`, `2>&1` (its `1`)
        elif not commands[-1] and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", word):
            continue  # SHOAL_BACKUP_PASSPHRASE=... shoal server backup
        else:
            commands[-1].append(word)
    return [command for command in commands if command]


def quoted(argv: list[str]) -> str:
    return " ".join(shlex.quote(word) for word in argv)

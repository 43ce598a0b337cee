"""Every `shoal ...` command line in the docs parses with the real CLI (click's parser, nothing run).

A renamed command or flag, a dropped choice or a missing argument in README.md or docs/*.md fails
here with the file and line. Values are not checked beyond what click converts (a file named in
the docs need not exist on this machine).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import click
import pytest

from shoal.cli.main import cli
from shoal.entry import _PROCESS_COMMANDS
from tests.support.docblocks import Block, blocks, logical_lines, parse_marker, quoted, shoal_argvs

ROOT = Path(__file__).resolve().parents[3]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
SHELL_INFOS = ("", "sh", "shell", "bash", "console")
INSTALL_MACHINES = {"server", "server2", "home", "laptop"}


def _command(ctx: click.Context, name: str) -> click.Command:
    """A top-level command as `shoal` resolves it (the process commands come from shoal.entry)."""
    if name in _PROCESS_COMMANDS:
        module_name, attr, _ = _PROCESS_COMMANDS[name]
        found: click.Command = getattr(importlib.import_module(module_name), attr)
        return found
    command = cli.get_command(ctx, name)
    if command is None:
        raise click.UsageError(f"no such command {name!r}")
    return command


def parse(argv: list[str]) -> None:
    """Parse `shoal ARGV` down to the leaf command; raises click's error when it does not."""
    ctx = cli.make_context("shoal", list(argv))
    rest = [*ctx._protected_args, *ctx.args]  # what the group left for its subcommand
    command: click.Command = _command(ctx, rest[0]) if rest else cli
    name, rest = (rest[0], rest[1:]) if rest else ("shoal", [])
    while True:
        try:
            ctx = command.make_context(name, rest, parent=ctx)
        except click.BadParameter as exc:
            if isinstance(getattr(exc.param, "type", None), click.Path) and "does not exist" in str(exc):
                return  # a file the reader has (an archive, a Compose file), not this machine
            raise
        if not isinstance(command, click.Group):
            return
        rest = [*ctx._protected_args, *ctx.args]
        if not rest:
            return
        sub = command.get_command(ctx, rest[0])
        if sub is None:
            raise click.UsageError(f"no such command {rest[0]!r} in {name}")
        command, name, rest = sub, rest[0], rest[1:]


def _doc_commands() -> list[tuple[str, list[str]]]:
    found = []
    for path in DOCS:
        for block in blocks(path.read_text()):
            if block.info.split(" ")[0] in SHELL_INFOS:
                where = f"{path.relative_to(ROOT)}:{block.line}"
                found += [(where, argv) for argv in shoal_argvs(block.body)]
    return found


DOC_COMMANDS = _doc_commands()


@pytest.mark.parametrize(("where", "argv"), DOC_COMMANDS, ids=[f"{w} {quoted(a)}" for w, a in DOC_COMMANDS])
def test_doc_command_parses(where: str, argv: list[str]) -> None:
    try:
        parse(argv)
    except click.exceptions.Exit as exc:  # --help, --version
        assert exc.exit_code == 0, f"{where}: shoal {quoted(argv)}"
    except click.ClickException as exc:
        pytest.fail(f"{where}: shoal {quoted(argv)}: {exc.format_message()}")


def test_the_docs_name_the_commands_that_matter() -> None:
    """The scan finds the install path's commands (a broken extractor would pass vacuously)."""
    named = {" ".join(argv[:2]) for _, argv in DOC_COMMANDS}
    assert {"server init", "server install", "agent install", "token create", "deploy -f"} <= named
    assert any(argv[:1] == ["join"] for _, argv in DOC_COMMANDS)


@pytest.mark.parametrize(
    "argv",
    [
        ["server", "init", "--no-such-flag"],
        ["token", "create", "--role", "root"],
        ["join", "https://x:7443"],  # --token is required
        ["server", "backup", "--keep", "x"],  # --keep is a number
        ["nodes", "ls"],
    ],
)
def test_parse_refuses_what_the_cli_refuses(argv: list[str]) -> None:
    with pytest.raises(click.ClickException):
        parse(argv)


def test_install_doc_says_where_every_block_runs() -> None:
    """docs/install.md: each block runs on named machines, is a file there, or says why not."""
    for block in blocks((ROOT / "docs" / "install.md").read_text()):
        where = f"docs/install.md:{block.line}"
        assert block.machines or "not run" in block.marker, f"{where}: no <!-- on: ... --> marker"
        assert set(block.machines) <= INSTALL_MACHINES, where
        assert not block.file or len(block.machines) == 1, where


def test_blocks_and_lines() -> None:
    text = (
        "intro\n\n<!-- on: laptop; file: compose.yaml -->\n```yaml\nname: x\n```\n"
        "```sh\nshoal join https://s:7443 \\\n    --token T && shoal agent install\n"
        "SHOAL_BACKUP_PASSPHRASE=p shoal server backup -o /b/$(date +%F).x > /dev/null  # c\n"
        "echo s | shoal registry login h --password-stdin < f\n```\n"
    )
    first, second = blocks(text)
    assert first == Block("yaml", "name: x\n", 4, {"on": "laptop", "file": "compose.yaml"})
    assert first.machines == ["laptop"] and first.file == "compose.yaml"
    assert second.marker == {} and len(logical_lines(second.body)) == 3
    assert shoal_argvs(second.body) == [
        ["join", "https://s:7443", "--token", "T"],
        ["agent", "install"],
        ["server", "backup", "-o", "/b/SUBST.x"],
        ["registry", "login", "h", "--password-stdin"],
    ]
    assert parse_marker("not run: DNS records") == {"not run": "DNS records"}

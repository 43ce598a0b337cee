"""`shoal policy show|set|history`: the admin's node policy (what deploys may do to nodes)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from shoal.cli.common import client, output_option, say, wants_json
from shoal.cli.render import print_json, print_table
from shoal.errors import ConfigError


@click.group("policy")
def policy() -> None:
    """The node policy: which roles or projects may use privileged keys and host binds."""


@policy.command("show")
@output_option
def policy_show() -> None:
    """Print the current policy and its version."""
    found = client().policy()
    if wants_json():
        print_json(found.model_dump())
        return
    click.echo(f"# node policy version {found.version}" + ("" if found.version else " (none set)"))
    click.echo(found.document.rstrip("\n") if found.document else "# the safe defaults: nothing granted")


@policy.command("set")
@click.option("-f", "--file", "path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@output_option
def policy_set(path: Path) -> None:
    """Set the policy from a YAML file (a new version; `-` reads stdin)."""
    text = sys.stdin.read() if str(path) == "-" else _read(path)
    from shoal.model.policy import PolicyError, parse_policy  # noqa: PLC0415 (pydantic: only here)

    try:
        parse_policy(text)
    except PolicyError as exc:
        raise ConfigError(f"{path}: " + f"\n{path}: ".join(exc.lines)) from None
    made = client().set_policy(text)
    say(f"node policy version {made.version} set", {"version": made.version})


@policy.command("history")
@output_option
def policy_history() -> None:
    """Every version, newest first."""
    found = client().policy_versions()
    if wants_json():
        print_json([v.model_dump() for v in found])
        return
    print_table(["version", "author", "created"], [[v.version, v.author, v.created] for v in found])


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {getattr(exc, 'strerror', None) or exc}") from None

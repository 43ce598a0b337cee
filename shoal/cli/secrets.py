"""`shoal secret create|ls|rm`: values go in (from a file or stdin) and never come back out."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from shoal.cli.common import client, output_option, say, wants_json
from shoal.cli.render import age, print_json, print_table
from shoal.errors import ConfigError


def secret_value(from_file: Path | None) -> bytes:
    """The value: the file's bytes, a hidden prompt on a terminal, else all of stdin."""
    if from_file is not None:
        try:
            return from_file.read_bytes()
        except OSError as exc:
            raise ConfigError(f"--from-file {from_file}: {exc.strerror}") from exc
    if sys.stdin.isatty():
        return str(click.prompt("value", hide_input=True, err=True)).encode()
    return sys.stdin.buffer.read()


@click.group("secret")
def secret() -> None:
    """Secrets: encrypted at rest, mounted on tmpfs in the replicas that use them."""


@secret.command("create")
@click.argument("name")
@click.option(
    "--from-file", type=click.Path(dir_okay=False, path_type=Path), help="read the value from this file"
)
@output_option
def secret_create(name: str, from_file: Path | None) -> None:
    """Store secret NAME (replacing its value if it exists); the value comes from stdin otherwise."""
    client().create_secret(name, secret_value(from_file))
    say(f"stored secret {name}", {"name": name})


@secret.command("ls")
@output_option
def secret_ls() -> None:
    """List secrets: names and ages, never values."""
    found = client().secrets()
    if wants_json():
        print_json(found)
        return
    print_table(["name", "age"], [[s.name, age(s.created)] for s in found])


@secret.command("rm")
@click.argument("names", nargs=-1, required=True, metavar="NAME ...")
@output_option
def secret_rm(names: tuple[str, ...]) -> None:
    """Remove secrets."""
    for name in names:
        client().remove_secret(name)
    say("\n".join(f"removed secret {n}" for n in names), {"removed": list(names)})

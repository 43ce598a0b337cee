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


secret_project = click.option(
    "--project", "-p", default="", help="the project the secret belongs to (default: a global secret)"
)


@click.group("secret")
def secret() -> None:
    """Secrets: encrypted at rest, mounted on tmpfs in the replicas that use them."""


@secret.command("create")
@click.argument("name")
@click.option(
    "--from-file", type=click.Path(dir_okay=False, path_type=Path), help="read the value from this file"
)
@secret_project
@output_option
def secret_create(name: str, from_file: Path | None, project: str) -> None:
    """Store secret NAME (replacing its value if it exists); the value comes from stdin otherwise.
    With -p, the secret is the project's own: only that project's services may use it."""
    client().create_secret(name, secret_value(from_file), project)
    say(f"stored secret {name}{_in(project)}", {"name": name, "project": project})


@secret.command("ls")
@output_option
def secret_ls() -> None:
    """List secrets: names and ages, never values."""
    found = client().secrets()
    if wants_json():
        print_json(found)
        return
    print_table(
        ["name", "project", "age"], [[s.name, s.project or "(global)", age(s.created)] for s in found]
    )


@secret.command("rm")
@click.argument("names", nargs=-1, required=True, metavar="NAME ...")
@secret_project
@output_option
def secret_rm(names: tuple[str, ...], project: str) -> None:
    """Remove secrets (a project's own with -p, else global ones)."""
    for name in names:
        client().remove_secret(name, project)
    say("\n".join(f"removed secret {n}{_in(project)}" for n in names), {"removed": list(names)})


def _in(project: str) -> str:
    return f" in project {project}" if project else ""

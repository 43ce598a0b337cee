"""`shoal registry login|ls|rm`: logins for private registries, kept by the server (encrypted) and
handed only to the nodes that pull an image from that host; the password never comes back out."""

from __future__ import annotations

import sys

import click

from shoal.cli.common import client, output_option, say, wants_json
from shoal.cli.render import age, print_json, print_table
from shoal.errors import ConfigError


def ask(what: str, hide: bool) -> str:
    """Prompt on the terminal; without one there is nobody to ask."""
    if not sys.stdin.isatty():
        flag = "--password-stdin" if hide else "--username"
        raise ConfigError(f"no terminal to ask for the {what}: pass {flag}")
    return str(click.prompt(what, hide_input=hide, err=True))


def read_password(from_stdin: bool) -> str:
    """The password: all of stdin (its trailing newline dropped, as `docker login` does) or a prompt."""
    password = sys.stdin.read().rstrip("\r\n") if from_stdin else ask("password", hide=True)
    if not password:
        raise ConfigError("the password is empty")
    return password


@click.group("registry")
def registry() -> None:
    """Logins for private registries: a deploy naming an image on HOST then pulls with it."""


@registry.command("login")
@click.argument("host")
@click.option("--username", "-u", help="the registry user (asked for when missing)")
@click.option("--password-stdin", is_flag=True, help="read the password from stdin (else asked for)")
@output_option
def registry_login(host: str, username: str | None, password_stdin: bool) -> None:
    """Store (or replace) the login for registry HOST[:PORT] (admin)."""
    if password_stdin and username is None:
        raise ConfigError("--password-stdin needs --username")
    user = username if username is not None else ask("username", hide=False)
    stored = client().registry_login(host, user, read_password(password_stdin))
    say(
        f"stored login for {stored.host} as {stored.username}",
        {"host": stored.host, "username": stored.username},
    )


@registry.command("ls")
@output_option
def registry_ls() -> None:
    """List registry logins: host, username and age, never the password."""
    found = client().registry_logins()
    if wants_json():
        print_json(found)
        return
    print_table(["host", "username", "created"], [[r.host, r.username, age(r.created)] for r in found])


@registry.command("rm")
@click.argument("hosts", nargs=-1, required=True, metavar="HOST ...")
@output_option
def registry_rm(hosts: tuple[str, ...]) -> None:
    """Remove registry logins (admin)."""
    for host in hosts:
        client().remove_registry_login(host)
    say("\n".join(f"removed login for {h}" for h in hosts), {"removed": list(hosts)})

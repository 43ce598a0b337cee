"""`shoal token create|ls|rm`: people's API tokens (admin), and join tokens for new nodes
(`create --role join`). A new token is shown once."""

from __future__ import annotations

import click

from shoal.cli.common import client, output_option, say, wants_json
from shoal.cli.render import age, print_json, print_table
from shoal.model.durations import parse_duration

ROLES = ["metrics", "viewer", "operator", "admin", "join"]


def _duration(value: str) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--ttl") from None
    if seconds <= 0:
        raise click.BadParameter("must be longer than 0", param_hint="--ttl")
    return seconds


@click.group("token")
def token() -> None:
    """API tokens for people and scripts (metrics < viewer < operator < admin)."""


@token.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True, help="join: for `shoal join` on a new node")
@click.option("--name", default="", help="what the token is for")
@click.option("--ttl", default="24h", show_default=True, help="join tokens: how long it is valid (30m, 168h)")
@click.option(
    "--uses", default=1, show_default=True, type=click.IntRange(1), help="join tokens: how many nodes"
)
@output_option
def token_create(role: str, name: str, ttl: str, uses: int) -> None:
    """Create a token; its secret is printed this once."""
    if role == "join":
        joining = client().create_join_token(_duration(ttl), uses)
        _print_new(joining.id, role, joining.token)
        return
    made = client().create_token(role, name)
    _print_new(made.id, made.role, made.token)


def _print_new(token_id: str, role: str, secret: str) -> None:
    if wants_json():
        print_json({"id": token_id, "role": role, "token": secret})
        return
    click.echo(secret)
    click.echo(f"created {role} token {token_id}; the secret above is not shown again", err=True)


@token.command("ls")
@output_option
def token_ls() -> None:
    """List tokens (never their secrets)."""
    found = client().tokens()
    if wants_json():
        print_json(found)
        return
    print_table(["id", "name", "role", "age"], [[t.id, t.name, t.role, age(t.created)] for t in found])


@token.command("rm")
@click.argument("token_id", metavar="ID")
@output_option
def token_rm(token_id: str) -> None:
    """Revoke token ID."""
    client().remove_token(token_id)
    say(f"removed token {token_id}", {"removed": token_id})

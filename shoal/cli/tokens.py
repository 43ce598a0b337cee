"""`shoal token create|ls|rm`: people's API tokens (admin). A new token is shown once."""

from __future__ import annotations

import click

from shoal.cli.common import client, output_option, say, wants_json
from shoal.cli.render import age, print_json, print_table


@click.group("token")
def token() -> None:
    """API tokens for people and scripts (metrics < viewer < operator < admin)."""


@token.command("create")
@click.option("--role", type=click.Choice(["metrics", "viewer", "operator", "admin"]), required=True)
@click.option("--name", default="", help="what the token is for")
@output_option
def token_create(role: str, name: str) -> None:
    """Create a token; its secret is printed this once."""
    made = client().create_token(role, name)
    if wants_json():
        print_json({"id": made.id, "role": made.role, "token": made.token})
        return
    click.echo(made.token)
    click.echo(f"created {made.role} token {made.id}; the secret above is not shown again", err=True)


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

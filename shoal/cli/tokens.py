"""`shoal token create|ls|rm`: people's API tokens and, with `--role join`, join tokens (admin).
A new token is shown once. A join token carries what nodes joining with it get (`--label`,
`--ingress`, `--relay`): the admin decides, never the joining node.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from shoal.cli.common import client, output_option, say, wants_json
from shoal.cli.render import age, print_json, print_table
from shoal.errors import ConfigError
from shoal.model.durations import parse_duration
from shoal.model.join_wire import JoinGrants

F = TypeVar("F", bound=Callable[..., Any])
API_ROLES = ["metrics", "viewer", "operator", "admin"]


def grant_options(command: F) -> F:
    """`--label k=v ...`, `--ingress`, `--relay`: what nodes joining with a join token get."""
    command = click.option("--relay", is_flag=True, help="join token: nodes relay for NAT'd nodes")(command)
    command = click.option("--ingress", is_flag=True, help="join token: nodes run the HTTPS ingress")(command)
    return click.option(
        "--label", "labels", multiple=True, metavar="K=V", help="join token: a label nodes get (repeatable)"
    )(command)


def join_grants(labels: tuple[str, ...], ingress: bool, relay: bool) -> JoinGrants:
    """The grants of `--label k=v ... [--ingress] [--relay]`; a malformed label is one line."""
    parsed: dict[str, str] = {}
    for pair in labels:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--label {pair!r}: expected key=value")
        parsed[key] = value
    return JoinGrants(labels=parsed, ingress=ingress, relay=relay)


def _duration(value: str) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--ttl") from None
    if seconds <= 0:
        raise click.BadParameter("must be longer than 0", param_hint="--ttl")
    return seconds


def grants_text(grants: JoinGrants) -> str:
    given = [f"{k}={v}" for k, v in sorted(grants.labels.items())]
    given += ["ingress"] * grants.ingress + ["relay"] * grants.relay
    return ", ".join(given) or "no labels, no ingress, no relay"


@click.group("token")
def token() -> None:
    """API tokens for people and scripts (metrics < viewer < operator < admin)."""


@token.command("create")
@click.option(
    "--role",
    type=click.Choice([*API_ROLES, "join"]),
    required=True,
    help="join: for `shoal join` on a new node",
)
@click.option("--name", default="", help="what the token is for")
@grant_options
@click.option("--ttl", default="24h", show_default=True, help="join tokens: how long it is valid (30m, 168h)")
@click.option(
    "--uses", default=1, show_default=True, type=click.IntRange(1), help="join tokens: how many nodes"
)
@output_option
def token_create(role: str, name: str, ttl: str, uses: int, **grant: Any) -> None:
    """Create a token; its secret is printed this once. `--role join`: a join token for new
    machines, giving them exactly the labels, ingress flag and relay mark set here."""
    grants = join_grants(grant["labels"], grant["ingress"], grant["relay"])
    if role == "join":
        if name:
            raise ConfigError("--name is for API tokens: a join token has no name")
        create_join(_duration(ttl), uses, grants)
        return
    if grants != JoinGrants():
        raise ConfigError("--label, --ingress and --relay are for join tokens: add --role join")
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


def create_join(ttl: float, uses: int, grants: JoinGrants) -> None:
    """Make a join token and print it (JSON: id, role, token and what it grants)."""
    api = client()
    made = api.create_join_token(ttl_s=ttl, uses=uses, grants=grants)
    if JoinGrants.model_validate(made.model_dump()) != grants:
        raise ConfigError(
            f"the server ignored the token's grants (it is older than this CLI): revoke {made.id}"
        )
    if wants_json():
        print_json({"id": made.id, "role": "join", "token": made.token, **grants.model_dump()})
        return
    click.echo(made.token)
    click.echo(
        f"join token {made.id} grants {grants_text(grants)}; the secret above is not shown again", err=True
    )
    click.echo(f"on the new machine: shoal join {api.server} --token {made.token}", err=True)

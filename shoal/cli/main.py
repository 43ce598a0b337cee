"""The root of the CLI for people: global options and the noun groups (cli/<noun>.py).

`shoal.entry` adds the process commands (server, agent, join, sandbox) to this group.
"""

from __future__ import annotations

import click

from shoal import __version__
from shoal.cli import completion, deploy, events, login, nodes, ps, secrets, services, tokens
from shoal.cli.common import FORMATS, OUTPUT_KEY, ShoalGroup


@click.group(cls=ShoalGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="shoal")
@click.option(
    "--output",
    "-o",
    type=FORMATS,
    default=None,
    help="table for people, json for scripts (any command also takes it)",
)
@click.pass_context
def cli(ctx: click.Context, output: str | None) -> None:
    """shoal: run Compose apps on a small cluster of machines."""
    if output is not None:
        ctx.meta.setdefault(OUTPUT_KEY, output)


for command in (
    login.login,
    login.context,
    tokens.token,
    nodes.node,
    deploy.deploy,
    services.service,
    ps.ps,
    secrets.secret,
    events.events,
    completion.completion,
):
    cli.add_command(command)

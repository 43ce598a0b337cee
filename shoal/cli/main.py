"""The root of the CLI for people: global options and the noun groups (cli/<noun>.py).

`shoal.entry` adds the process commands (server, agent, join, sandbox) to this group.
"""

from __future__ import annotations

import click

from shoal import __version__
from shoal.cli.common import FORMATS, OUTPUT_KEY, ShoalGroup

# name → (module, attribute): each imported only when used, so a command pays for itself alone
_COMMANDS = {
    "login": ("shoal.cli.login", "login"),
    "context": ("shoal.cli.login", "context"),
    "token": ("shoal.cli.tokens", "token"),
    "node": ("shoal.cli.nodes", "node"),
    "deploy": ("shoal.cli.deploy", "deploy"),
    "service": ("shoal.cli.services", "service"),
    "ps": ("shoal.cli.ps", "ps"),
    "project": ("shoal.cli.projects", "project"),
    "secret": ("shoal.cli.secrets", "secret"),
    "volume": ("shoal.cli.volumes", "volume"),
    "registry": ("shoal.cli.registries", "registry"),
    "policy": ("shoal.cli.policy", "policy"),
    "events": ("shoal.cli.events", "events"),
    "completion": ("shoal.cli.completion", "completion"),
}


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


for _name, (_module, _attr) in _COMMANDS.items():
    cli.add_lazy_command(_name, _module, _attr)

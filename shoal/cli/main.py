"""The root of the CLI for people: global options and the noun groups (cli/<noun>.py).

`shoal.entry` adds the process commands (server, agent, join, sandbox) to this group.
"""

from __future__ import annotations

import click

from shoal import __version__
from shoal.cli.common import FORMATS, OUTPUT_KEY, ShoalGroup

# name → (module, attribute, help): each imported only when used, so a command pays for itself
# alone and `shoal --help` lists them all without importing any (tests check the help matches)
_COMMANDS = {
    "login": (
        "shoal.cli.login",
        "login",
        "Log in to a cluster: pin its CA, check the token and store both as the current context.",
    ),
    "context": ("shoal.cli.login", "context", "The clusters this CLI knows (`shoal login` adds one)."),
    "token": (
        "shoal.cli.tokens",
        "token",
        "API tokens for people and scripts (metrics < viewer < operator < admin).",
    ),
    "node": ("shoal.cli.nodes", "node", "The machines of the cluster."),
    "deploy": (
        "shoal.cli.deploy",
        "deploy",
        "Deploy a Compose file and wait until every service is healthy (or one fails).",
    ),
    "service": ("shoal.cli.services", "service", "Services deployed from Compose files."),
    "ps": ("shoal.cli.ps", "ps", "List replicas: project, service, replica, node, state, health, ip, image."),
    "project": (
        "shoal.cli.projects",
        "project",
        "Projects: the namespaces of services (`shoal deploy -p NAME`, or the file's name:).",
    ),
    "secret": (
        "shoal.cli.secrets",
        "secret",
        "Secrets: encrypted at rest, mounted on tmpfs in the replicas that use them.",
    ),
    "volume": (
        "shoal.cli.volumes",
        "volume",
        "Named volumes: each lives on one node, and the replicas that use it run there.",
    ),
    "registry": (
        "shoal.cli.registries",
        "registry",
        "Logins for private registries: a deploy naming an image on HOST then pulls with it.",
    ),
    "policy": (
        "shoal.cli.policy",
        "policy",
        "The node policy: which roles or projects may use privileged keys and host binds.",
    ),
    "events": ("shoal.cli.events", "events", "Show cluster events (deploys, node changes, failures)."),
    "completion": (
        "shoal.cli.completion",
        "completion",
        'Print the shell completion script (use: eval "$(shoal completion bash)").',
    ),
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


for _name, (_module, _attr, _help) in _COMMANDS.items():
    cli.add_lazy_command(_name, _module, _attr, _help)

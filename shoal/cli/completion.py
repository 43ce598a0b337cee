"""`shoal completion bash|zsh|fish`: print click's completion script for the whole `shoal` command."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

from shoal.cli.common import output_option

COMPLETE_VAR = "_SHOAL_COMPLETE"


def completion_script(root: click.Command, shell: str, prog_name: str = "shoal") -> str:
    cls = get_completion_class(shell)
    if cls is None:
        raise click.BadParameter(f"unsupported shell {shell!r}")
    return cls(root, {}, prog_name, COMPLETE_VAR).source()


@click.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@output_option
def completion(shell: str) -> None:
    """Print the shell completion script (use: eval "$(shoal completion bash)")."""
    root = click.get_current_context().find_root().command
    click.echo(completion_script(root, shell))

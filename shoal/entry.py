"""The one `shoal` command: the top of the stack, where the packages meet.

`cli` holds the commands for people (they talk only to the API); the long-running processes
(`server`, `agent`, `join`) and the local `sandbox` live in their own packages and are added
here, so that `cli` never imports `control`, `agent` or `sandbox`.
"""

from __future__ import annotations

import importlib

import click

from shoal.cli.main import cli

# (module, attribute) of each group contributed by a package other than cli; a package not
# yet present is skipped, so the command still works while it is built.
_PROCESS_COMMANDS = [
    ("shoal.control.commands", "server"),
    ("shoal.agent.commands", "agent"),
    ("shoal.agent.commands", "join"),
    ("shoal.sandbox.commands", "sandbox"),
]


def _add_process_commands(group: click.Group) -> None:
    for module_name, attr in _PROCESS_COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        group.add_command(getattr(module, attr))


def main() -> None:
    _add_process_commands(cli)
    cli(prog_name="shoal")


if __name__ == "__main__":
    main()

"""The one `shoal` command: the top of the stack, where the packages meet.

`cli` holds the commands for people (they talk only to the API); the long-running processes
(`server`, `agent`, `join`) and the local `sandbox` live in their own packages and are added
here, lazily by module name, so that `cli` never imports `control`, `agent` or `sandbox` and a
command pays only for the package it runs. `shoal agent ...` and `shoal join` go straight to the
agent's commands without loading the people's CLI at all: the agent is long-running and its
memory is a figure (issue 5: ≤ 60 MB with 20 containers).
"""

from __future__ import annotations

import atexit
import gc
import importlib
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # click is imported in main(), while the collector is off (see below)
    import click

# name → (module, attribute, help) of each command contributed by a package other than cli
_PROCESS_COMMANDS = {
    "server": ("shoal.control.commands", "server", "The control plane: API, web UI and controller."),
    "agent": ("shoal.agent.commands", "agent", "The node agent: runs this machine's share of the cluster."),
    "join": ("shoal.agent.commands", "join", "Join this machine to a cluster as a node."),
    "sandbox": (
        "shoal.sandbox.commands",
        "sandbox",
        "A whole shoal cluster in namespaces on this machine, for trying and testing.",
    ),
}
# Run without the people's CLI around them (their own errors are already one line).
_DIRECT = ("agent", "join")


def _add_process_commands(group: click.Group) -> None:
    for name, (module_name, attr, short) in _PROCESS_COMMANDS.items():
        group.add_lazy_command(name, module_name, attr, short)  # type: ignore[attr-defined]


def _direct_command(argv: Sequence[str]) -> click.Command | None:
    """The agent's command when argv asks for it first thing (`shoal agent start ...`)."""
    if not argv or argv[0] not in _DIRECT:
        return None
    from shoal.agent.memory import slim_imports, use_system_malloc  # noqa: PLC0415

    if list(argv[:2]) == ["agent", "start"]:
        use_system_malloc(list(argv))  # the long-running agent: its memory is a figure
    slim_imports()  # this process is the agent's: only the parts of pyroute2/httpx it uses
    module_name, attr, _ = _PROCESS_COMMANDS[argv[0]]
    command: click.Command = getattr(importlib.import_module(module_name), attr)
    return command


def collect_after_start_up() -> None:
    """Turn the cyclic GC back on, past what start-up loaded; keep it off that again at exit.

    Imports make a few hundred thousand objects that live until the process ends. Every
    collection while they load, and the interpreter's last collections at exit, would walk them
    all: about 50 ms of a `shoal deploy --detach` of 0.26 s, measured. Frozen, they are never
    scanned; what the command itself makes is collected as usual (`logs -f` runs for days).
    """
    gc.freeze()
    gc.enable()
    atexit.register(gc.freeze)


def main() -> None:
    # shoal uses no pydantic plugins: looking for them reads every installed package's metadata
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    direct = _direct_command(sys.argv[1:])
    if direct is not None:  # long-running: its start-up is no figure, its memory is (agent.memory)
        direct.main(args=sys.argv[2:], prog_name=f"shoal {sys.argv[1]}", help_option_names=["-h", "--help"])
        return
    gc.disable()  # until collect_after_start_up()
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]  # httpx's own CLI: rich
    from shoal.cli.main import cli  # noqa: PLC0415 (not loaded for the agent's commands)

    _add_process_commands(cli)
    collect_after_start_up()
    cli(prog_name="shoal")


if __name__ == "__main__":
    main()

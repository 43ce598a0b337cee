"""What every CLI command shares: the `--output` option, the client for the resolved target,
and the root group that turns every error into one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any, TypeVar

import click

from shoal.client import Client
from shoal.client.contexts import ContextStore, Target, resolve
from shoal.errors import ShoalError

F = TypeVar("F", bound=Callable[..., Any])
OUTPUT_KEY = "shoal.output"
CLIENT_KEY = "shoal.client"
FORMATS = click.Choice(["table", "json"])


class ShoalGroup(click.Group):
    """The root group: a ShoalError anywhere below becomes `error: <line>` and exit 1.

    Commands are added lazily by module name, with their help line, so `shoal ps` does not pay
    for importing Flask, psycopg and pyroute2, and `shoal --help` imports no command at all.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy: dict[str, tuple[str, str, str]] = {}

    def add_lazy_command(self, name: str, module: str, attr: str, short_help: str) -> None:
        """Add command `name`, imported from `module`.`attr` only when it is used."""
        self.lazy[name] = (module, attr, short_help)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is not None or cmd_name not in self.lazy:
            return found
        module_name, attr, _ = self.lazy.pop(cmd_name)
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        self.add_command(command, cmd_name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from the help lines given at registration: nothing is imported."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max((len(n) for n in names), default=0)
        rows = [(name, self._help_of(ctx, name, limit)) for name in names]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def _help_of(self, ctx: click.Context, name: str, limit: int) -> str:
        command = super().get_command(ctx, name)
        if command is None:  # not imported: a stand-in cut to the width as click cuts the real one
            command = click.Command(name, help=self.lazy[name][2] if name in self.lazy else "")
        return command.get_short_help_str(limit=limit)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ShoalError as exc:
            click.echo(f"error: {one_line(str(exc))}", err=True)
            ctx.exit(1)
        except OSError as exc:  # a config file or a file named on the command line
            where = f": {exc.filename}" if exc.filename else ""
            click.echo(f"error: {exc.strerror or exc}{where}", err=True)
            ctx.exit(1)


def one_line(message: str) -> str:
    return " ".join(message.split()) or "failed"


def _remember_output(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.find_root().meta[OUTPUT_KEY] = value


def output_option(func: F) -> F:
    """`--output table|json` on a command (the root group has it too; the command's wins)."""
    option = click.option(
        "--output",
        "-o",
        type=FORMATS,
        default=None,
        expose_value=False,
        is_eager=True,
        callback=_remember_output,
        help="table for people, json for scripts",
    )
    return option(func)


def output_format(ctx: click.Context | None = None) -> str:
    ctx = ctx or click.get_current_context()
    return str(ctx.find_root().meta.get(OUTPUT_KEY, "table"))


def wants_json() -> bool:
    return output_format() == "json"


def say(message: str, data: Any) -> None:
    """A command's result: one line for people, `data` as JSON for scripts."""
    if wants_json():
        from shoal.cli.render import print_json  # noqa: PLC0415 (rich: only when printing)

        print_json(data)
    else:
        click.echo(message)


def target() -> Target:
    """The server, token and CA this invocation talks to (context + environment)."""
    return resolve(ContextStore().load(), os.environ)


def client() -> Client:
    """The API client for the resolved target, one per invocation, closed when it ends."""
    root = click.get_current_context().find_root()
    found = root.meta.get(CLIENT_KEY)
    if isinstance(found, Client):
        return found
    goal = target()
    context = None if os.environ.get("SHOAL_SERVER") else goal.context  # the context's server only
    keep = (lambda urls: ContextStore().set_servers(context, urls)) if context else None
    made = Client(goal.server, goal.token, goal.ca, servers=goal.servers, on_servers=keep)
    root.meta[CLIENT_KEY] = made
    root.call_on_close(made.close)
    return made


def project_option(func: F) -> F:
    """`-p/--project`: which project's service a name means (needed only when several have it)."""
    option = click.option(
        "--project",
        "-p",
        default=None,
        help="the service's project (when several projects have one so named)",
    )
    return option(func)

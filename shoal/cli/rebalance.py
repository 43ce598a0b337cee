"""`shoal service rebalance [SERVICE] [-p P] [--dry-run]`: move replicas back to an even spread.

Asks the server (`POST /services/<name>/rebalance`), then follows the controller's moves (`GET`)
until it says done or failed, printing each move as it starts. Without SERVICE: every replicated
service (of the project, with -p), one after another.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import click

from shoal.cli.common import client, output_option, project_option, wants_json
from shoal.errors import ShoalError

if TYPE_CHECKING:
    from shoal.client.api import Client
    from shoal.client.models import Rebalance

POLL_S = 0.5


def describe(move: dict[str, Any], service: str) -> str:
    return f"{service}: moving replica {move['replica']} from {move['from']} to {move['to']}"


def result(got: Rebalance) -> dict[str, Any]:
    """The JSON a script reads: the service, its moves planned (dry run) or done, and the state."""
    return {
        "service": got.service,
        "project": got.project,
        "state": got.state,
        "moves": got.moves,
        "message": got.message,
        "dry_run": got.dry_run,
    }


def _follow(api: Client, asked: Rebalance, timeout_s: float, quiet: bool) -> Rebalance:
    """Poll the rebalance until it ends, printing each move as the controller starts it."""
    shown, deadline = 0, time.monotonic() + timeout_s
    got = asked
    while True:
        got = api.rebalance_progress(asked.service, asked.project)
        for move in got.moves[shown:]:
            if not quiet:
                click.echo(describe(move, asked.service))
        shown = len(got.moves)
        if got.state == "failed":
            raise ShoalError(f"rebalance of {asked.service} failed: {got.message}")
        if got.state != "running":
            return got
        if time.monotonic() > deadline:
            raise ShoalError(f"rebalance of {asked.service} not done within {timeout_s:g}s ({got.message})")
        time.sleep(POLL_S)


def _one(api: Client, name: str, project: str | None, dry_run: bool, timeout_s: float) -> dict[str, Any]:
    quiet = wants_json()
    asked = api.rebalance(name, project, dry_run=dry_run)
    if asked.state == "done":
        if not quiet:
            click.echo(f"service {asked.service} is already balanced")
        return result(asked)
    if dry_run:
        if not quiet:
            for move in asked.moves:
                click.echo(describe(move, asked.service))
            if asked.message:
                click.echo(f"{asked.service}: {asked.message}")
        return result(asked)
    done = _follow(api, asked, timeout_s, quiet)
    if not quiet:
        click.echo(f"service {asked.service} rebalanced: {len(done.moves)} move(s)")
    return result(done)


@click.command("rebalance")
@click.argument("name", required=False, metavar="[SERVICE]")
@click.option("--dry-run", is_flag=True, help="show the moves without making them")
@click.option("--timeout", "timeout_s", type=float, default=600.0, show_default=True, help="seconds to wait")
@project_option
@output_option
def service_rebalance(name: str | None, dry_run: bool, timeout_s: float, project: str | None) -> None:
    """Move replicas back to an even spread over the nodes, one at a time, health-gated."""
    api = client()
    if name is not None:
        answer: Any = _one(api, name, project, dry_run, timeout_s)
    else:
        found = [s for s in api.services() if s.mode == "replicated" and project in (None, s.project)]
        answer = [_one(api, s.name, s.project, dry_run, timeout_s) for s in found]
    if wants_json():
        from shoal.cli.render import print_json  # noqa: PLC0415 (rich: only when printing)

        print_json(answer)

"""`shoal events [-f]`: what happened in the cluster, oldest first; -f keeps following."""

from __future__ import annotations

import json

import click

from shoal.cli.common import client, output_option, wants_json
from shoal.cli.render import clock, print_json, print_table
from shoal.client.models import Event


def event_line(event: Event) -> str:
    return f"{clock(event.time)}  {event.kind:<18} {event.subject:<16} {event.message}"


def _print_event(event: Event, as_json: bool) -> None:
    click.echo(json.dumps(event.model_dump(mode="json")) if as_json else event_line(event))


@click.command("events")
@click.option("--follow", "-f", is_flag=True, help="keep printing events as they happen")
@click.option("--since", type=int, help="only events after this id")
@click.option(
    "--limit", type=click.IntRange(1, 10000), default=50, show_default=True, help="how many past events"
)
@output_option
def events(follow: bool, since: int | None, limit: int) -> None:
    """Show cluster events (deploys, node changes, failures). With -f and --output json: one per line."""
    api = client()
    past = sorted(api.events(since=since, limit=limit), key=lambda e: e.id)
    if not follow:
        if wants_json():
            print_json(past)
        else:
            print_table(
                ["time", "kind", "subject", "message"],
                [[clock(e.time), e.kind, e.subject, e.message] for e in past],
            )
        return
    last = since or 0  # no past events at all: everything from the first one on is new
    for event in past:
        _print_event(event, wants_json())
        last = event.id
    for event in api.stream_events(since=last):
        _print_event(event, wants_json())

"""`shoal server ls`: the servers of the cluster (several may run on one database; one leads)."""

from __future__ import annotations

import click

from shoal.cli.common import client, output_option, wants_json
from shoal.cli.render import age, print_json, print_table

COLUMNS = ["node", "url", "leader", "version", "last seen"]


@click.command("ls")
@output_option
def ls() -> None:
    """List the servers: node, URL, whether it leads, version, last seen."""
    rows = client().servers()
    if wants_json():
        print_json([r.model_dump() for r in rows])
        return
    table = [[r.node, r.url, "yes" if r.leader else "-", r.version, age(r.last_seen)] for r in rows]
    print_table(COLUMNS, table)

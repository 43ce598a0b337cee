"""`shoal volume ls|rm`: named volumes, per project, and the node each is bound to.

A volume is bound to a node when a replica using it is first placed; its replicas run only there.
`rm` forgets the binding (refused while a service mounts the volume); the directory stays on the
node until someone deletes it there (docs/compose.md).
"""

from __future__ import annotations

import click

from shoal.cli.common import client, output_option, say, wants_json
from shoal.cli.render import print_json, print_table, size

VOLUME_FIELDS = ["project", "name", "node", "size"]


@click.group("volume")
def volume() -> None:
    """Named volumes: each lives on one node, and the replicas that use it run there."""


@volume.command("ls")
@click.option("--project", "-p", help="only this project's volumes")
@output_option
def volume_ls(project: str | None) -> None:
    """List volumes: project, name, node, size."""
    found = client().volumes(project=project)
    records = [{"project": v.project, "name": v.name, "node": v.node, "size": v.size} for v in found]
    if wants_json():
        print_json(records)
        return
    rows = [
        [r["project"], r["name"], r["node"], "-" if v.size is None else size(v.size)]
        for r, v in zip(records, found, strict=True)
    ]
    print_table(VOLUME_FIELDS, rows)


@volume.command("rm")
@click.argument("name")
@click.option("--project", "-p", help="the volume's project (needed when several have one of that name)")
@output_option
def volume_rm(name: str, project: str | None) -> None:
    """Forget volume NAME (refused while a service uses it); its directory stays on its node."""
    gone = client().remove_volume(name, project)
    record = {"project": gone.project, "name": gone.name, "node": gone.node, "size": gone.size}
    say(
        f"removed volume {gone.name} of project {gone.project}; its directory stays on node {gone.node}"
        f" (under the agent's data dir: volumes/{gone.name})",
        record,
    )

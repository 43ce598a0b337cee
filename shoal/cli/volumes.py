"""`shoal volume ls|rm`: named volumes, per project, and the node each is bound to.

A volume is bound to a node when a replica using it is first placed; its replicas run only there.
`rm` forgets the binding (refused while a service mounts the volume); the directory stays on the
node until someone deletes it there (docs/compose.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from shoal.cli.common import client, output_option, say, wants_json
from shoal.cli.render import print_json, print_table, size

if TYPE_CHECKING:  # the answers' models load with the first answer (see shoal.client.lazy)
    from shoal.client.models import Volume

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
    if wants_json():
        print_json([volume_record(v) for v in found])
        return
    print_table(VOLUME_FIELDS, [volume_row(v) for v in found])


def volume_record(v: Volume) -> dict[str, Any]:
    """One volume for scripts: the contract's fields."""
    return {"project": v.project, "name": v.name, "node": v.node, "size": v.size}


def volume_row(v: Volume) -> list[str]:
    return [v.project, v.name, v.node, "-" if v.size is None else size(v.size)]


@volume.command("rm")
@click.argument("name")
@click.option("--project", "-p", help="the volume's project (needed when several have one of that name)")
@output_option
def volume_rm(name: str, project: str | None) -> None:
    """Forget volume NAME (refused while a service uses it); its directory stays on its node."""
    gone = client().remove_volume(name, project)
    say(
        f"removed volume {gone.name} of project {gone.project}; its directory stays on node {gone.node}"
        f" (under the agent's data dir: volumes/{gone.name})",
        volume_record(gone),
    )

"""`shoal ps`: every replica in the cluster, where it runs, its state and health."""

from __future__ import annotations

from typing import Any

import click

from shoal.cli.common import client, output_option, wants_json
from shoal.cli.render import print_json, print_table
from shoal.client.models import Task

PS_FIELDS = ["project", "service", "replica", "node", "state", "health", "ip", "image", "message"]


def ps_record(task: Task) -> dict[str, Any]:
    """One replica for scripts: the contract's fields (and the agent's reason)."""
    return {
        "project": task.project,
        "service": task.service,
        "replica": task.replica,
        "node": task.node,
        "state": task.state,
        "health": task.health,
        "ip": task.ip,
        "image": task.image,
        "message": task.message,
        "id": task.id,
    }


@click.command("ps")
@click.option("--node", "-n", help="only replicas on this node")
@click.option("--service", "-s", help="only replicas of this service")
@click.option("--all", "-a", "show_all", is_flag=True, help="also replicas being stopped or stopped")
@click.option("--project", "-p", help="only replicas of this project's services")
@output_option
def ps(node: str | None, service: str | None, show_all: bool, project: str | None) -> None:
    """List replicas: project, service, replica, node, state, health, ip, image."""
    found = client().tasks(node=node, service=service, project=project if service else None)
    tasks = [t for t in found if (show_all or t.desired == "run") and project in (None, t.project)]
    records = [ps_record(t) for t in tasks]
    if wants_json():
        print_json(records)
        return
    print_table(PS_FIELDS, [[r[f] for f in PS_FIELDS] for r in records])

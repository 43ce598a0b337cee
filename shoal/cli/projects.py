"""`shoal project ls|rm`: the projects (Compose's namespaces) services were deployed in."""

from __future__ import annotations

import click

from shoal.cli.common import client, output_option, say, wants_json
from shoal.cli.render import print_json, print_table


@click.group("project")
def project() -> None:
    """Projects: the namespaces of services (`shoal deploy -p NAME`, or the file's name:)."""


@project.command("ls")
@output_option
def project_ls() -> None:
    """List projects and their services."""
    found = client().projects()
    if wants_json():
        print_json([p.model_dump() for p in found])
        return
    print_table(["name", "services"], [[p.name, ", ".join(p.services)] for p in found])


@project.command("rm")
@click.argument("name")
@click.option("--volumes", is_flag=True, help="also remove the project's named volumes (kept by default)")
@output_option
def project_rm(name: str, volumes: bool) -> None:
    """Remove every service of a project and stop their replicas; its volumes are kept."""
    answer = client().remove_project(name, volumes=volumes)
    removed = [str(s) for s in answer.get("removed", [])]
    say(f"removed project {name}: {', '.join(removed)}", answer)

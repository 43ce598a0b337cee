"""`shoal service ls|inspect|scale|restart|rollback|rebalance|rm|logs|exec`: running what was deployed."""

from __future__ import annotations

import json
import sys

import click

from shoal.cli.common import client, output_option, project_option, say, wants_json
from shoal.cli.rebalance import service_rebalance
from shoal.cli.render import age, clock, print_fields, print_json, print_table
from shoal.client.models import Service, ServiceDetail
from shoal.errors import ConfigError

SERVICE_COLUMNS = ["name", "project", "mode", "replicas", "image", "revision", "rollout", "updated"]


def parse_scale(arg: str) -> tuple[str, int]:
    """`web=3` → ("web", 3)."""
    name, sep, count = arg.partition("=")
    if not sep or not name:
        raise ConfigError(f"scale {arg!r}: expected SERVICE=REPLICAS, e.g. web=3")
    if not count.isdigit():
        raise ConfigError(f"scale {arg!r}: replicas must be a whole number >= 0")
    return name, int(count)


def log_record(line: str) -> dict[str, str]:
    """`<replica>| <line>` → {"replica", "line"} (the whole line when it has no prefix)."""
    replica, sep, text = line.partition("| ")
    return {"replica": replica, "line": text} if sep else {"replica": "", "line": line}


def service_row(svc: Service) -> list[str]:
    rollout = svc.rollout.state + (f": {svc.rollout.message}" if svc.rollout.message else "")
    return [
        svc.name,
        svc.project,
        svc.mode,
        f"{svc.healthy}/{svc.replicas}",
        svc.image,
        str(svc.revision),
        rollout,
        age(svc.updated),
    ]


@click.group("service")
def service() -> None:
    """Services deployed from Compose files."""


@service.command("ls")
@output_option
def service_ls() -> None:
    """List services: healthy/desired replicas, image, revision, rollout."""
    found = client().services()
    if wants_json():
        print_json(found)
        return
    print_table(SERVICE_COLUMNS, [service_row(s) for s in found])


def _show_service(svc: ServiceDetail) -> None:
    print_fields(
        {
            "name": svc.name,
            "project": svc.project,
            "mode": svc.mode,
            "image": svc.image,
            "replicas": f"{svc.replicas} desired, {svc.running} running, {svc.healthy} healthy",
            "revision": svc.revision,
            "rollout": f"{svc.rollout.state} {svc.rollout.message}".strip(),
            "ingress": svc.ingress or "-",
            "unplaced": "; ".join(f"replica {u.replica}: {u.reason}" for u in svc.unplaced) or "-",
        }
    )
    click.echo("\nRevisions:")
    print_table(
        ["revision", "created", "image", "change"],
        [[r.revision, clock(r.created), r.image, r.change] for r in svc.revisions],
    )
    click.echo("\nTasks:")
    print_table(
        ["replica", "revision", "node", "state", "health", "ip", "desired", "message"],
        [[t.replica, t.revision, t.node, t.state, t.health, t.ip, t.desired, t.message] for t in svc.tasks],
    )


@service.command("inspect")
@click.argument("name")
@project_option
@output_option
def service_inspect(name: str, project: str | None) -> None:
    """Show a service: its spec (--output json), revisions, tasks and rollout."""
    detail = client().service(name, project)
    if wants_json():
        print_json(detail)
        return
    _show_service(detail)


def _done(detail: ServiceDetail, message: str) -> None:
    say(message, detail)


@service.command("scale")
@click.argument("pairs", nargs=-1, required=True, metavar="SERVICE=REPLICAS ...")
@project_option
@output_option
def service_scale(pairs: tuple[str, ...], project: str | None) -> None:
    """Set the number of replicas, e.g. `shoal service scale web=3`."""
    wanted = [parse_scale(p) for p in pairs]
    for name, count in wanted:
        _done(client().scale(name, count, project), f"service {name} scaled to {count}")


@service.command("restart")
@click.argument("name")
@project_option
@output_option
def service_restart(name: str, project: str | None) -> None:
    """Replace every replica (a rolling restart, as a new revision)."""
    detail = client().restart(name, project)
    _done(detail, f"service {name} restarting as revision {detail.revision}")


@service.command("rollback")
@click.argument("name")
@project_option
@output_option
def service_rollback(name: str, project: str | None) -> None:
    """Go back to the previous revision."""
    detail = client().rollback(name, project)
    _done(detail, f"service {name} rolled back to revision {detail.revision}")


@service.command("rm")
@click.argument("names", nargs=-1, required=True, metavar="NAME ...")
@project_option
@output_option
def service_rm(names: tuple[str, ...], project: str | None) -> None:
    """Remove services and stop their replicas."""
    for name in names:
        client().remove_service(name, project)
    say("\n".join(f"removed service {n}" for n in names), {"removed": list(names)})


@service.command("logs")
@click.argument("name")
@click.option("--follow", "-f", is_flag=True, help="keep printing new lines")
@click.option("--since", help="only lines newer than this (RFC 3339 time or e.g. 10m)")
@click.option("--tail", type=click.IntRange(min=0), help="lines per replica from the end")
@project_option
@output_option
def service_logs(name: str, follow: bool, since: str | None, tail: int | None, project: str | None) -> None:
    """Print the replicas' logs, merged, each line prefixed with its replica (json: an object a line)."""
    as_json = wants_json()
    for line in client().logs(name, follow=follow, since=since, tail=tail, project=project):
        click.echo(json.dumps(log_record(line)) if as_json else line)


def _stdin_bytes(interactive: bool) -> bytes | None:
    return sys.stdin.buffer.read() if interactive else None


@service.command("exec")
@click.argument("name")
@click.option("--replica", type=click.IntRange(min=0), help="which replica (default: any running one)")
@click.option("--interactive", "-i", is_flag=True, help="send this command's stdin to CMD")
@click.argument("cmd", nargs=-1, required=True, type=click.UNPROCESSED)
@project_option
@output_option
def service_exec(
    name: str, replica: int | None, interactive: bool, cmd: tuple[str, ...], project: str | None
) -> None:
    """Run CMD in a replica of NAME: `shoal service exec web -- ls /`; exits with CMD's code."""
    result = client().exec(name, list(cmd), replica, _stdin_bytes(interactive), project)
    if wants_json():
        print_json(result)
    else:
        click.echo(result.output, nl=False)
    click.get_current_context().exit(result.exit_code)


service.add_command(service_rebalance)

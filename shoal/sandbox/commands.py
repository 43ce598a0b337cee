"""`shoal sandbox up | status | exec | down`: a whole cluster in namespaces on this machine.

The top of the sandbox package: `layout` plans, `build` makes the network, registry and nodes,
`cluster` runs shoal's server and agents on them, `teardown` removes it all.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from shoal.errors import ShoalError
from shoal.sandbox import build, cluster, net, state, teardown
from shoal.sandbox.layout import NAT_MODES, NAT_SHARED, Layout, plan_layout
from shoal.sandbox.nodes import exec_in
from shoal.sandbox.servers import check_servers
from shoal.sandbox.state import SandboxState

DIR_OPTION = click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="State directory [default: $SHOAL_SANDBOX_DIR or /var/lib/shoal-sandbox].",
)


def _fail(exc: ShoalError) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(1)


@click.group("sandbox")
def sandbox() -> None:
    """A whole shoal cluster in namespaces on this machine, for trying and testing."""


@sandbox.command("up")
@click.option("--nodes", default=3, show_default=True, help="Number of nodes (n1 runs the server).")
@click.option("--nat", default=1, show_default=True, help="How many of them sit behind the NAT router.")
@click.option(
    "--nat-mode",
    type=click.Choice(NAT_MODES),
    default=NAT_SHARED,
    show_default=True,
    help="shared: one NAT router, the NAT'd nodes on one LAN (they talk directly). symmetric: a router "
    "per NAT'd node with a new source port per destination, so they can only talk through a relay.",
)
@click.option("--servers", default=1, show_default=True, help="Servers on n1..nN, on one PostgreSQL on n1.")
@click.option("--no-cluster", is_flag=True, help="Build the network, registry and nodes only.")
@click.option(
    "--timeout", "timeout_s", default=180.0, show_default=True, help="Seconds to wait for the mesh."
)
@DIR_OPTION
def up_cmd(nodes: int, nat: int, nat_mode: str, servers: int, directory: Path | None, **flags: Any) -> None:
    """Build the sandbox and point the CLI at it; returns when every node has joined."""
    root = state.sandbox_dir(directory).resolve()
    try:
        layout = plan_layout(nodes, nat, nat_mode)
        check_servers(servers, nodes - nat)
        if (root / state.STATE_FILE).exists():
            raise ShoalError(f"a sandbox is already recorded in {root}: run `shoal sandbox down` first")
        net.check_host()  # before anything is made: a failure after it tears down all `sbx-*`
        record = _build(layout, root, flags["no_cluster"], flags["timeout_s"], servers)
    except ShoalError as exc:
        _fail(exc)
    click.echo(f"sandbox up: {len(record.nodes)} nodes, registry {record.registry}, state in {root}")
    if record.server:
        click.echo(f"server {record.server}; the CLI context `sandbox` points at it")
    for url in record.servers[1:]:
        click.echo(f"server {url} (on the same database; the CLI and agents fail over to it)")


def _build(layout: Layout, root: Path, no_cluster: bool, timeout_s: float, servers: int) -> SandboxState:
    try:
        record = build.build_topology(layout, root)
        build.push_example_image(record, root)
        if not no_cluster:
            cluster.start_cluster(record, root, timeout_s, servers)
        return record
    except BaseException:
        teardown.down(root)
        raise


@sandbox.command("status")
@click.option("--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@DIR_OPTION
def status_cmd(output: str, directory: Path | None) -> None:
    """What the sandbox is: server, CA, registry and nodes."""
    try:
        record = state.load(state.sandbox_dir(directory).resolve())
    except ShoalError as exc:
        _fail(exc)
    if output == "json":
        click.echo(json.dumps(status_document(record), indent=2))
    else:
        click.echo(status_table(record))


def status_document(record: SandboxState) -> dict[str, object]:
    """The `status --output json` document (fields fixed by DESIGN.md)."""
    doc: dict[str, object] = {"server": record.server, "ca": record.ca, "registry": record.registry}
    doc["nat_mode"] = record.nat_mode
    doc["nodes"] = [
        n.model_dump(include={"name", "netns", "address", "nat", "ingress"}) for n in record.nodes
    ]
    ingress_ca = record.ingress_ca or cluster.ingress_ca(record)
    if ingress_ca:
        doc["ingress_ca"] = ingress_ca
    return doc


def status_table(record: SandboxState) -> str:
    lines = [
        f"server:   {record.server or '-'}",
        f"ca:       {record.ca or '-'}",
        f"registry: {record.registry}",
    ]
    if record.nat_mode != NAT_SHARED:
        lines.append(f"nat mode: {record.nat_mode}")
    if record.ingress_ca:
        lines.append(f"ingress ca: {record.ingress_ca}")
    lines.append(f"{'NODE':<6} {'NETNS':<10} {'ADDRESS':<16} {'NAT':<5} INGRESS")
    for n in record.nodes:
        lines.append(f"{n.name:<6} {n.netns:<10} {n.address:<16} {_yes(n.nat):<5} {_yes(n.ingress)}")
    return "\n".join(lines)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


@sandbox.command("exec", context_settings={"ignore_unknown_options": True})
@click.argument("node")
@click.argument("cmd", nargs=-1, required=True, type=click.UNPROCESSED)
@DIR_OPTION
def exec_cmd(node: str, cmd: tuple[str, ...], directory: Path | None) -> None:
    """Run CMD inside NODE's namespaces (`shoal sandbox exec n1 -- ip addr`); exits with its code."""
    try:
        record = state.load(state.sandbox_dir(directory).resolve())
        code = exec_in(record.node(node).holder_pid, list(cmd))
    except ShoalError as exc:
        _fail(exc)
    sys.exit(code)


@sandbox.command("down")
@click.option("-v", "--verbose", is_flag=True, help="List everything removed.")
@DIR_OPTION
def down_cmd(verbose: bool, directory: Path | None) -> None:
    """Remove everything the sandbox made (works after a crash, and when nothing is left)."""
    try:
        removed = teardown.down(state.sandbox_dir(directory).resolve())
    except ShoalError as exc:
        _fail(exc)
    for line in removed if verbose else []:
        click.echo(f"removed {line}")
    click.echo(f"sandbox down ({len(removed)} things removed)")

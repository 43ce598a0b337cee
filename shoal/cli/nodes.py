"""`shoal node ls|inspect|drain|activate|label|relay|ingress|rm|join-token`: the machines of the cluster."""

from __future__ import annotations

import datetime

import click

from shoal.cli.common import client, output_option, say, wants_json
from shoal.cli.render import age, labels_text, print_fields, print_json, print_table, size
from shoal.cli.tokens import create_join, grant_options, join_grants
from shoal.client.models import Node, NodeDetail
from shoal.errors import ConfigError
from shoal.model.status import PeerStatus

NODE_COLUMNS = [
    "name",
    "state",
    "availability",
    "address",
    "endpoint",
    "labels",
    "relay",
    "version",
    "tasks",
    "cpu",
    "memory",
    "seen",
]


def parse_label_changes(args: tuple[str, ...] | list[str]) -> dict[str, str | None]:
    """`k=v` sets a label, `k-` removes it (as kubectl label does)."""
    changes: dict[str, str | None] = {}
    for arg in args:
        if "=" in arg:
            key, value = arg.split("=", 1)
        elif arg.endswith("-"):
            key, value = arg[:-1], None
        else:
            raise ConfigError(f"label {arg!r}: expected key=value to set or key- to remove")
        if not key:
            raise ConfigError(f"label {arg!r}: the key is empty")
        changes[key] = value
    return changes


def node_row(node: Node) -> list[str]:
    cpu = f"{node.allocated.cpus:g}/{node.capacity.cpus:g}"
    memory = f"{size(node.allocated.memory_bytes)}/{size(node.capacity.memory_bytes)}"
    marks = ["ingress" if node.ingress else "", "relay" if node.is_relay else ""]
    labels = ",".join(filter(None, [labels_text(node.labels), *marks]))
    return [
        node.name,
        node.state,
        node.availability,
        node.address,
        node.endpoint or "-",
        labels,
        node.relay or "-",
        node.version or "-",
        str(node.allocated.tasks),
        cpu,
        memory,
        age(node.last_seen),
    ]


@click.group("node")
def node() -> None:
    """The machines of the cluster."""


@node.command("ls")
@output_option
def node_ls() -> None:
    """List nodes."""
    found = client().nodes()
    if wants_json():
        print_json(found)
        return
    print_table(NODE_COLUMNS, [node_row(n) for n in found])


def _show_node(detail: NodeDetail) -> None:
    print_fields(
        {
            "name": detail.name,
            "state": detail.state,
            "availability": detail.availability,
            "role": detail.role,
            "subnet": detail.subnet,
            "address": detail.address,
            "endpoint": detail.endpoint or "-",
            "labels": labels_text(detail.labels) or "-",
            "ingress": detail.ingress,
            "is relay": detail.is_relay,
            "capacity": _capacity(detail),
            "agent": detail.agent_version or "-",
            "last seen": age(detail.last_seen),
        }
    )
    click.echo("\nPeers:")
    print_table(
        ["name", "path", "endpoint", "handshake", "rx", "tx"],
        [
            [
                p.name,
                _path(p),
                p.endpoint or "-",
                _handshake(p.latest_handshake),
                size(p.rx_bytes),
                size(p.tx_bytes),
            ]
            for p in detail.peers
        ],
    )
    click.echo("\nTasks:")
    print_table(
        ["service", "replica", "state", "health", "ip", "message"],
        [
            [t.service, t.replica, t.state, t.health, t.ip, t.message]
            for t in detail.tasks
            if t.desired == "run"
        ],
    )


def _path(peer: PeerStatus) -> str:
    return f"relayed via {peer.via or '?'}" if peer.path == "relayed" else "direct"


def _capacity(node: Node) -> str:
    return f"{node.capacity.cpus:g} cpus, {size(node.capacity.memory_bytes)}"


def _handshake(when: float | None) -> str:
    if not when:
        return "never"
    return age(datetime.datetime.fromtimestamp(when, datetime.UTC).isoformat())


@node.command("inspect")
@click.argument("name")
@output_option
def node_inspect(name: str) -> None:
    """Show a node: its labels, capacity, WireGuard peers and tasks."""
    detail = client().node(name)
    if wants_json():
        print_json(detail)
        return
    _show_node(detail)


@node.command("drain")
@click.argument("name")
@output_option
def node_drain(name: str) -> None:
    """Move replicas off NAME and place no new ones there."""
    _changed(client().drain_node(name), f"node {name} is draining")


@node.command("activate")
@click.argument("name")
@output_option
def node_activate(name: str) -> None:
    """Let replicas be placed on NAME again."""
    _changed(client().activate_node(name), f"node {name} is active")


@node.command("label")
@click.argument("name")
@click.argument("changes", nargs=-1, required=True, metavar="KEY=VALUE|KEY- ...")
@output_option
def node_label(name: str, changes: tuple[str, ...]) -> None:
    """Set (k=v) or remove (k-) labels of NAME."""
    updated = client().label_node(name, parse_label_changes(changes))
    _changed(updated, f"node {name} labels: {labels_text(updated.labels) or '-'}")


@node.command("relay")
@click.argument("name")
@click.argument("mark", type=click.Choice(["on", "off"]))
@output_option
def node_relay(name: str, mark: str) -> None:
    """Let NAME relay for NAT'd nodes (on; only a public node relays) or stop it (off)."""
    updated = client().set_node_relay(name, mark == "on")
    public = "" if updated.endpoint or mark == "off" else " (it relays once it has a public endpoint)"
    _changed(updated, f"node {name} relay {mark}{public}")


@node.command("ingress")
@click.argument("name")
@click.argument("mark", type=click.Choice(["on", "off"]))
@output_option
def node_ingress(name: str, mark: str) -> None:
    """Run the HTTPS ingress (Caddy on 80/443) on NAME (on), or stop it (off)."""
    _changed(client().set_node_ingress(name, mark == "on"), f"node {name} ingress {mark}")


@node.command("rm")
@click.argument("name")
@output_option
def node_rm(name: str) -> None:
    """Remove NAME from the cluster (its replicas are placed elsewhere)."""
    client().remove_node(name)
    say(f"removed node {name}", {"removed": name})


def _changed(updated: Node, message: str) -> None:
    say(message, updated)


@node.command("join-token")
@click.option(
    "--ttl", type=click.FloatRange(min=1), default=86400.0, show_default=True, help="seconds it stays valid"
)
@click.option(
    "--uses", type=click.IntRange(min=1), default=1, show_default=True, help="how many nodes may join with it"
)
@grant_options
@output_option
def node_join_token(ttl: float, uses: int, labels: tuple[str, ...], ingress: bool, relay: bool) -> None:
    """Make a join token for new machines (admin), as `shoal token create --role join` does."""
    create_join(ttl, uses, join_grants(labels, ingress, relay))

"""The agent's commands: `shoal join`, `shoal agent start`, `shoal agent install`.

Added to the one `shoal` command by shoal.entry. `join` pins the CA and registers (agent.join),
then writes agent.json, node.json and ca.crt into the data dir; `agent start` builds the agent
(agent.assemble) and runs its loop until SIGTERM/SIGINT; `agent install` writes a systemd unit.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from shoal.agent import config as cfg
from shoal.agent.report import read_capacity
from shoal.errors import ShoalError, first_line
from shoal.model.addressing import CLUSTER_CIDR
from shoal.private import make_private

if TYPE_CHECKING:
    from shoal.agent.join import JoinToken

DEFAULT_DATA_DIR = str(cfg.AgentConfig().data_dir)
GRANT_HINT = (
    "an admin sets them: `shoal node label|ingress NODE ...`,"
    " or `shoal token create --role join --label/--ingress`"
)
UNIT_PATH = "/etc/systemd/system/shoal-agent.service"

UNIT_TEMPLATE = """\
[Unit]
Description=shoal agent (node {name})
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart={exe} agent start --data-dir {data_dir}
Restart=always
RestartSec=2
KillMode=process
Delegate=yes
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
"""


def _fail(exc: ShoalError) -> click.ClickException:
    return click.ClickException(first_line(exc))


def _labels(pairs: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r}: expected k=v", param_hint="--label")
        out[key] = value
    return out


@dataclass(frozen=True)
class JoinOptions:
    """What a person asked `shoal join` for."""

    url: str
    token: str
    name: str
    endpoint: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    ingress: bool = False


def join_body(options: JoinOptions, token: JoinToken, public_key: str) -> dict[str, object]:
    capacity = read_capacity()
    return {
        "token": token.raw,
        "name": options.name,
        "public_key": public_key,
        "endpoint": options.endpoint,
        "labels": options.labels,
        "ingress": options.ingress,
        "capacity": {"cpus": capacity.cpus, "memory_bytes": capacity.memory_bytes},
    }


def not_granted(options: JoinOptions, answer: dict[str, Any]) -> list[str]:
    """What `--label`/`--ingress` asked for that the join token did not grant (the server gives
    the node what its token grants; an older server, which says nothing of it, took the request)."""
    granted, ingress = answer.get("labels"), answer.get("ingress")
    labels = [] if granted is None else [f"{k}={v}" for k, v in options.labels.items() if granted.get(k) != v]
    return labels + (["ingress"] if options.ingress and ingress is False else [])


def do_join(options: JoinOptions, config: cfg.AgentConfig) -> tuple[cfg.NodeRecord, list[str]]:
    """Pin, register and store: the whole of `shoal join` (no output). Also returns what the
    request asked for and was not granted."""
    # join only, not the agent: cryptography (x509) and pyroute2 (agent.memory)
    from shoal.agent.join import parse_token, pinned_ca, register  # noqa: PLC0415
    from shoal.agent.sys.wireguard import load_or_create_key  # noqa: PLC0415

    token = parse_token(options.token)
    ca_pem = pinned_ca(options.url, token)  # raises before anything secret is sent
    _, public = load_or_create_key(config.wg_key_file)  # the one the wireguard reconciler uses
    answer = register(options.url, ca_pem, join_body(options, token, public))
    node = _record(options.url, answer, public)
    cfg.write_private(config.ca_file, ca_pem)
    cfg.save(config, node)
    return node, not_granted(options, answer)


def _record(url: str, answer: dict[str, object], public_key: str) -> cfg.NodeRecord:
    try:
        return cfg.NodeRecord(
            server=url.rstrip("/"),
            name=str(answer["node"]),
            credential=str(answer["credential"]),
            agent_secret=str(answer.get("agent_secret") or ""),
            subnet=str(answer["subnet"]),
            overlay_ip=str(answer["overlay_ip"]),
            cluster_cidr=str(answer.get("cluster_cidr") or CLUSTER_CIDR),
            server_overlay_ip=str(answer.get("server_overlay_ip") or ""),
            public_key=public_key,
        )
    except KeyError as exc:
        raise ShoalError(f"the server's join answer lacks {exc.args[0]!r}") from exc


@click.command()
@click.argument("url")
@click.option("--token", required=True, help="Join token from `shoal` admin (shoal-join.<secret>.<ca>).")
@click.option("--name", default=None, help="Node name (default: the host name).")
@click.option("--endpoint", default=None, help="HOST:PORT other nodes reach this node's WireGuard on.")
@click.option(
    "--label", "labels", multiple=True, help="Ask for label k=v (repeatable); the join token decides."
)
@click.option("--ingress", is_flag=True, help="Ask to run the HTTPS ingress; the join token decides.")
@click.option("--data-dir", default=DEFAULT_DATA_DIR, show_default=True, type=click.Path(path_type=Path))
@click.option("--set", "overrides", multiple=True, help="Agent config override key=value (see agent.json).")
def join(url: str, token: str, name: str | None, data_dir: Path, **flags: Any) -> None:
    """Join this machine to a cluster as a node."""
    options = JoinOptions(
        url,
        token,
        name or socket.gethostname(),
        flags["endpoint"],
        _labels(flags["labels"]),
        flags["ingress"],
    )
    try:
        config = cfg.with_overrides(
            dataclasses.replace(cfg.AgentConfig(), data_dir=data_dir), list(flags["overrides"])
        )
        node, refused = do_join(options, config)
    except ShoalError as exc:
        raise _fail(exc) from None
    if refused:
        click.echo(
            f"warning: the join token does not grant {', '.join(refused)}: ignored ({GRANT_HINT})", err=True
        )
    click.echo(f"joined as {node.name}: subnet {node.subnet}, overlay {node.overlay_ip}")
    click.echo(f"start the agent with: shoal agent start --data-dir {data_dir}")


@click.group()
def agent() -> None:
    """The node agent: runs this machine's share of the cluster."""


@agent.command("start")
@click.option("--data-dir", default=DEFAULT_DATA_DIR, show_default=True, type=click.Path(path_type=Path))
@click.option("--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"]))
def start(data_dir: Path, log_level: str) -> None:
    """Run the agent loop until stopped (SIGTERM or Ctrl-C)."""
    from shoal.agent.memory import limit_arenas  # noqa: PLC0415

    limit_arenas()  # before any of the agent's threads exist
    from shoal.agent.assemble import build_agent  # noqa: PLC0415 (the whole agent: not for every CLI call)

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = cfg.load_config(data_dir)
        make_private(config.data_dir)
        built = build_agent(config, cfg.load_node(data_dir))
    except ShoalError as exc:
        raise _fail(exc) from None

    def _terminate(signum: int, frame: FrameType | None) -> None:
        built.stop()

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    built.run()


@agent.command("install")
@click.option("--data-dir", default=DEFAULT_DATA_DIR, show_default=True, type=click.Path(path_type=Path))
@click.option("--unit", "unit_path", default=UNIT_PATH, show_default=True, type=click.Path(path_type=Path))
def install(data_dir: Path, unit_path: Path) -> None:
    """Write a systemd unit that runs `shoal agent start` (enable it with systemctl)."""
    try:
        node = cfg.load_node(data_dir)
    except ShoalError as exc:
        raise _fail(exc) from None
    unit_path.parent.mkdir(parents=True, exist_ok=True)
    unit_path.write_text(render_unit(node.name, _shoal_exe(), data_dir))
    click.echo(f"wrote {unit_path}; run: systemctl daemon-reload && systemctl enable --now {unit_path.name}")


def render_unit(name: str, exe: str, data_dir: Path) -> str:
    return UNIT_TEMPLATE.format(name=name, exe=exe, data_dir=data_dir)


def _shoal_exe() -> str:
    candidate = Path(sys.argv[0]).resolve()
    return str(candidate) if candidate.name == "shoal" else f"{sys.executable} -m shoal"

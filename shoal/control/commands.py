"""`shoal server init | start | install | backup | restore | join | ls | upgrade-check`.

`init` makes the data dir (CA, certificate, secrets key, private PostgreSQL unless --db), the
first admin and join tokens; `start` migrates, serves the API over HTTPS and runs the controller;
`join` makes another server's data dir on the same database; `ls` asks the API for the servers.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn
from urllib.parse import urlparse

import click
import psycopg

from shoal import __version__
from shoal.cli.servers import ls as ls_cmd
from shoal.control import auth, backup_schedule, pki, postgres, upgrade, vault
from shoal.control.app import close_app, create_app
from shoal.control.backup_ops import make_backup, restore_backup
from shoal.control.config import REBALANCE_SETTLE_S, ServerConfig, load, save
from shoal.control.controller import Controller
from shoal.control.presence import Presence
from shoal.control.serve import ApiServing
from shoal.control.server_join import join_server
from shoal.control.store import nodes, services, tokens
from shoal.control.store.db import connect
from shoal.control.store.migrate import migrate
from shoal.errors import ShoalError, first_line
from shoal.malloc import limit_arenas
from shoal.model.addressing import CLUSTER_CIDR
from shoal.model.durations import parse_duration
from shoal.model.join_wire import JoinGrants
from shoal.model.ports import API_PORT
from shoal.model.versions import next_minor
from shoal.private import make_private

DEFAULT_DATA_DIR = Path("/var/lib/shoal/server")
JOIN_TTL_S = 7 * 86400
JOIN_USES = 1000


def _fail(exc: ShoalError) -> NoReturn:
    click.echo(f"error: {exc}", err=True)
    sys.exit(1)


@click.group("server")
def server() -> None:
    """The control plane: API, web UI and controller."""


def _make_pki(config: ServerConfig, sans: list[str]) -> None:
    pki.make_ca(config.ca_cert, config.ca_key)
    host = urlparse(config.advertise).hostname or "127.0.0.1"
    pki.make_server_cert(config.ca_cert, config.ca_key, config.cert, config.key, [host, *sans])
    vault.make_key(config.secrets_key)
    if config.ingress_tls == "internal":
        pki.make_ca(config.ingress_ca_cert, config.ingress_ca_key, "shoal ingress root", path_length=1)


def _managed_db(config: ServerConfig) -> str:
    postgres.init(config.pg_dir)
    postgres.start(config.pg_dir)
    postgres.create_database(postgres.dsn(config.pg_dir, dbname="postgres"), postgres.DB_NAME)
    return postgres.dsn(config.pg_dir)


def _first_tokens(config: ServerConfig) -> tuple[str, str]:
    admin_id, admin = auth.new_api_token()
    join_id, join, join_hash = auth.new_join_token(pki.fingerprint(config.ca_cert))
    with connect(config.dsn) as conn:
        migrate(conn)
        tokens.create(conn, admin_id, "admin", "admin", auth.digest(admin))
        tokens.create_join(conn, join_id, join_hash, JOIN_TTL_S, JOIN_USES, grants=JoinGrants(server=True))
    return admin, join


@server.command("init")
@click.option("--db", "dsn", default="", help="PostgreSQL DSN; without it a private PostgreSQL is made.")
@click.option("--data-dir", type=click.Path(path_type=Path), default=DEFAULT_DATA_DIR, show_default=True)
@click.option("--listen", default=f"0.0.0.0:{API_PORT}", show_default=True)
@click.option("--advertise", default="", help="URL agents and people reach the API at.")
@click.option("--cluster-cidr", default=CLUSTER_CIDR, show_default=True)
@click.option("--acme-email", default="", help="Contact for ACME certificates on ingress nodes.")
@click.option("--acme-ca", default="", help="ACME directory URL (default: Let's Encrypt).")
@click.option(
    "--ingress-tls",
    type=click.Choice(["acme", "internal"]),
    default="acme",
    show_default=True,
    help="internal: ingress certificates from a cluster root made here (tests, offline clusters).",
)
@click.option("--ingress-host", default="", help="Publish the API and web UI through ingress here.")
@click.option("--server-node", default="", help="Name the server machine's own agent joins with.")
@click.option("--san", multiple=True, help="Extra name or address for the server certificate.")
@click.option("--heartbeat", "heartbeat_s", type=float, default=1.0, show_default=True)
@click.option("--grace", "grace_s", type=float, default=5.0, show_default=True)
@click.option(
    "--rebalance-settle",
    "rebalance_settle_s",
    type=float,
    default=REBALANCE_SETTLE_S,
    show_default=True,
    help="Seconds a service with `rebalance: auto` stays uneven before its replicas move.",
)
@click.option("--output", type=click.Choice(["text", "json"]), default="text")
def init_cmd(**opts: object) -> None:
    """Create the data dir, CA, certificates, database and first tokens."""
    try:
        _init(**opts)  # type: ignore[arg-type]
    except (ShoalError, OSError) as exc:
        _fail(exc if isinstance(exc, ShoalError) else ShoalError(str(exc)))


def _init(
    *,
    dsn: str,
    data_dir: Path,
    listen: str,
    advertise: str,
    san: tuple[str, ...],
    output: str,
    **rest: object,
) -> None:
    data_dir = data_dir.resolve()
    if (data_dir / "server.json").exists():
        raise ShoalError(f"{data_dir} is already initialised (server.json exists)")
    data_dir.mkdir(mode=0o711, parents=True, exist_ok=True)
    port = listen.rpartition(":")[2]
    advertise = advertise or f"https://{socket.getfqdn()}:{port}"
    config = ServerConfig(data_dir=data_dir, dsn=dsn or "-", listen=listen, advertise=advertise, **rest)
    _make_pki(config, list(san))
    if not dsn:
        config.dsn, config.managed_postgres = _managed_db(config), True
    try:
        admin, join = _first_tokens(config)
    finally:
        if config.managed_postgres:
            postgres.stop(config.pg_dir)
    save(config)
    _print_init(config, admin, join, output)


def _print_init(config: ServerConfig, admin: str, join: str, output: str) -> None:
    if output == "json":
        click.echo(
            json.dumps(
                {"admin_token": admin, "join_token": join, "ca": str(config.ca_cert), "url": config.advertise}
            )
        )
        return
    click.echo(f"server initialised in {config.data_dir}")
    click.echo(f"API URL:     {config.advertise}")
    click.echo(f"CA:          {config.ca_cert}")
    click.echo(f"admin token: {admin}   (shown once)")
    click.echo(f"join token:  {join}")


@server.command("start")
@click.option("--data-dir", type=click.Path(path_type=Path), default=DEFAULT_DATA_DIR, show_default=True)
@click.option("--listen", default="", help="Override the listen address of server.json.")
@click.option("--no-controller", is_flag=True, help="Serve the API only.")
def start_cmd(data_dir: Path, listen: str, no_controller: bool) -> None:
    """Run the API server and the controller until SIGTERM/SIGINT."""
    try:
        config = load(data_dir.resolve())
        if listen:
            config.listen = listen
        config.controller = config.controller and not no_controller
        _start(config)
    except ShoalError as exc:
        _fail(exc)


def _start(config: ServerConfig) -> None:
    make_private(config.data_dir)
    if config.managed_postgres and not postgres.is_running(config.pg_dir):
        postgres.start(config.pg_dir)
    try:
        with connect(config.dsn) as conn:
            migrate(conn)
        _serve(config)
    finally:
        if config.managed_postgres:
            postgres.stop(config.pg_dir)


def _serve(config: ServerConfig) -> None:
    limit_arenas()  # before the request pool's threads exist: each would get an arena of its own
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    serving = ApiServing(config)
    serving.start_front()  # Caddy, from this thread before any other exists (front.py)
    controller = presence = None
    try:
        serving.app = app = create_app(config)
        controller = Controller(config) if config.controller else None
        if controller:
            app.extensions["shoal"].leader = controller.leader
        serving.start_lanes()
        if controller:
            controller.start()
        context = app.extensions["shoal"]
        presence = Presence(config, controller.leader if controller else None, context.set_server_urls)
        presence.start()
        click.echo(f"shoal server listening on https://{config.listen}", err=True)
        while not stop.wait(1.0) and serving.healthy():
            pass
    finally:
        if serving.app is not None:
            serving.app.extensions["shoal"].hub.stop()  # long-polls and streams end now
        serving.stop()
        if controller:
            controller.stop()
        if presence:
            presence.stop()
        if serving.app is not None:
            close_app(serving.app)


BACKUPS = Path("/var/backups/shoal")
UNIT = """[Unit]
Description=shoal control plane
After=network-online.target
Wants=network-online.target

[Service]
ExecStart={exe} server start --data-dir {data_dir}
Restart=always
RestartSec=2
KillMode=mixed
TimeoutStopSec=30

[Install]
WantedBy=multi-user.target
"""


@server.command("install")
@click.option("--data-dir", type=click.Path(path_type=Path), default=DEFAULT_DATA_DIR, show_default=True)
@click.option(
    "--unit-dir", type=click.Path(path_type=Path), default=Path("/etc/systemd/system"), show_default=True
)
@click.option("--backup-every", "every", default="", help="Also a backup timer: every DURATION (1d, 6h).")
@click.option(
    "--backup-dir", "directory", type=click.Path(path_type=Path), default=BACKUPS, show_default=True
)
@click.option("--backup-keep", "keep", type=click.IntRange(min=1), default=7, show_default=True)
@click.option("--backup-passphrase-file", "passphrase", type=click.Path(path_type=Path), default=None)
def install_cmd(data_dir: Path, unit_dir: Path, **backup: Any) -> None:
    """Write the systemd unit `shoal-server.service` (and, with --backup-every, a backup timer)."""
    exe = Path(sys.argv[0]).resolve()
    units = {"shoal-server.service": UNIT.format(exe=exe, data_dir=data_dir.resolve())}
    if backup["every"]:
        units |= backup_schedule.units(exe, data_dir.resolve(), _schedule(**backup))
    for name, text in units.items():
        (unit_dir / name).write_text(text)
        click.echo(f"wrote {unit_dir / name}")
    timer = " shoal-backup.timer" if backup["every"] else ""
    click.echo(f"enable with: systemctl enable --now shoal-server{timer}")


def _schedule(every: str, directory: Path, keep: int, passphrase: Path | None) -> backup_schedule.Schedule:
    if passphrase is None:
        _fail(ShoalError("--backup-every needs --backup-passphrase-file (a timer cannot ask for it)"))
    try:
        every_s = parse_duration(every)
    except ValueError as exc:
        _fail(ShoalError(f"--backup-every {every!r}: {exc}"))
    return backup_schedule.Schedule(every_s, directory.resolve(), keep, passphrase.resolve())


def _passphrase(path: Path | None, confirm: bool) -> str:
    """From --passphrase-file, else $SHOAL_BACKUP_PASSPHRASE, else asked (hidden)."""
    if path is not None:
        return path.read_text().strip()
    given = os.environ.get("SHOAL_BACKUP_PASSPHRASE", "")
    return given or str(click.prompt("backup passphrase", hide_input=True, confirmation_prompt=confirm))


@server.command("backup")
@click.option(
    "-o", "--output", "out", type=click.Path(path_type=Path), default=None, help="Archive to write."
)
@click.option(
    "--dir", "directory", type=click.Path(path_type=Path), default=None, help="Or: a new one in DIR."
)
@click.option("--keep", type=click.IntRange(min=1), default=None, help="With --dir: archives kept.")
@click.option("--data-dir", type=click.Path(path_type=Path), default=DEFAULT_DATA_DIR, show_default=True)
@click.option("--passphrase-file", type=click.Path(path_type=Path), default=None)
def backup_cmd(out: Path | None, directory: Path | None, keep: int | None, **source: Any) -> None:
    """Save the database and the key files in one archive, encrypted with a passphrase."""
    if (out is None) == (directory is None) or (keep is not None and directory is None):
        _fail(ShoalError("give one of -o FILE or --dir DIR (--keep goes with --dir)"))
    try:
        sealed = make_backup(source["data_dir"], _passphrase(source["passphrase_file"], confirm=True))
        if directory is not None:
            out = backup_schedule.store(directory, sealed, keep, datetime.now(UTC))
        else:
            assert out is not None
            out.write_bytes(sealed)
            out.chmod(0o600)
    except (ShoalError, OSError) as exc:
        _fail(exc if isinstance(exc, ShoalError) else ShoalError(str(exc)))
    click.echo(f"backup written to {out} ({len(sealed)} bytes)")


@server.command("restore")
@click.argument("archive", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--data-dir", type=click.Path(path_type=Path), default=DEFAULT_DATA_DIR, show_default=True)
@click.option(
    "--db", "dsn", default="", help="An empty PostgreSQL database; without it a private one is made."
)
@click.option("--passphrase-file", type=click.Path(path_type=Path), default=None)
def restore_cmd(archive: Path, data_dir: Path, dsn: str, passphrase_file: Path | None) -> None:
    """Make a fresh server data dir from a backup; then `shoal server start` it."""
    try:
        config = restore_backup(
            archive.read_bytes(), _passphrase(passphrase_file, confirm=False), data_dir, dsn
        )
    except (ShoalError, OSError) as exc:
        _fail(exc if isinstance(exc, ShoalError) else ShoalError(str(exc)))
    click.echo(
        f"restored into {config.data_dir}; start it with: shoal server start --data-dir {config.data_dir}"
    )


@server.command("upgrade-check")
@click.option("--data-dir", type=click.Path(path_type=Path), default=DEFAULT_DATA_DIR, show_default=True)
@click.option("--to", "target", default="", help="The version to upgrade to (default: the next minor).")
@click.option("--output", type=click.Choice(["text", "json"]), default="text")
def upgrade_check_cmd(data_dir: Path, target: str, output: str) -> None:
    """List what blocks upgrading the servers (agents too far behind, down nodes, rollouts)."""
    target = target or next_minor(__version__)
    try:
        found = _upgrade_blockers(load(data_dir), target)
    except (ShoalError, OSError, psycopg.Error) as exc:
        _fail(ShoalError(first_line(exc)))
    if output == "json":
        click.echo(json.dumps({"server": __version__, "to": target, "blockers": found}))
    else:
        click.echo("\n".join(found) if found else f"nothing blocks an upgrade to {target}")
    sys.exit(1 if found else 0)


def _upgrade_blockers(config: ServerConfig, target: str) -> list[str]:
    started = config.managed_postgres and not postgres.is_running(config.pg_dir)
    if started:
        postgres.start(config.pg_dir)
    try:
        with connect(config.dsn) as conn:
            rows = nodes.all_nodes(conn), nodes.agent_versions(conn), services.all_services(conn)
    finally:
        if started:
            postgres.stop(config.pg_dir)
    return upgrade.blockers(target, *rows)


@server.command("join")
@click.argument("archive", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--db", "dsn", required=True, help="The PostgreSQL DSN the first server uses.")
@click.option("--advertise", required=True, help="URL agents and people reach this server at.")
@click.option("--data-dir", type=click.Path(path_type=Path), default=DEFAULT_DATA_DIR, show_default=True)
@click.option("--listen", default="", help="Listen address (default: the first server's).")
@click.option("--node", default="", help="This machine's name in `shoal server ls` (default: hostname).")
@click.option("--san", multiple=True, help="Extra name or address for this server's certificate.")
@click.option("--passphrase-file", type=click.Path(path_type=Path), default=None)
def join_cmd(archive: Path, passphrase_file: Path | None, san: tuple[str, ...], **where: Any) -> None:
    """Make another server of a cluster from its backup, on the same (external) database."""
    try:
        passphrase = _passphrase(passphrase_file, confirm=False)
        config = join_server(archive.read_bytes(), passphrase, sans=list(san), **where)
    except (ShoalError, OSError) as exc:
        _fail(exc if isinstance(exc, ShoalError) else ShoalError(str(exc)))
    click.echo(
        f"server made in {config.data_dir}; start it with: shoal server start --data-dir {config.data_dir}"
    )


server.add_command(ls_cmd, "ls")

"""`shoal server join`: a second (third, ...) server on another machine, on the same database.

It is made from the first server's backup archive (`shoal server backup`): the cluster CA (cert
and key, to sign this server's own certificate for its own advertise URL), the secrets key and
the ingress root come from it; the database dump in it is not used. Both servers must reach one
PostgreSQL: an external one given with `--db`. A first server on its private PostgreSQL cannot
be joined, since that database listens only on a Unix socket on its machine.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse

from shoal.control import config as server_config
from shoal.control import pki
from shoal.control.backup import BackupError, unpack, unseal
from shoal.control.backup_ops import PUBLIC_FILES
from shoal.control.config import ServerConfig
from shoal.control.store.db import connect
from shoal.control.store.migrate import current_version

OWN_FILES = ("server.json", "server.crt", "server.key")  # this server's, never the first's
NEEDED = ("ca.crt", "ca.key", "secrets.key")


def join_server(
    sealed: bytes,
    passphrase: str,
    *,
    data_dir: Path,
    dsn: str,
    advertise: str,
    listen: str,
    node: str,
    sans: list[str],
) -> ServerConfig:
    """Fill a fresh `data_dir` for a server of the archive's cluster on the database `dsn`."""
    _, _, files = unpack(unseal(sealed, passphrase))
    first = _first_config(files)
    _check_database(dsn)
    data_dir = data_dir.resolve()
    if (data_dir / server_config.CONFIG_NAME).exists():
        raise BackupError(f"{data_dir} already holds a server (server.json exists): join into a fresh dir")
    config = first.model_copy(
        update={
            "data_dir": data_dir,
            "dsn": dsn,
            "managed_postgres": False,
            "advertise": advertise,
            "listen": listen or first.listen,
            "node_name": node,
        }
    )
    _write_files(data_dir, {k: v for k, v in files.items() if k not in OWN_FILES})
    host = urlparse(advertise).hostname or "127.0.0.1"
    pki.make_server_cert(config.ca_cert, config.ca_key, config.cert, config.key, [host, *sans])
    server_config.save(config)
    return config


def _first_config(files: dict[str, bytes]) -> ServerConfig:
    missing = [name for name in (server_config.CONFIG_NAME, *NEEDED) if name not in files]
    if missing:
        raise BackupError(f"the archive lacks {', '.join(missing)}: make it with `shoal server backup`")
    raw = json.loads(files[server_config.CONFIG_NAME])
    first = ServerConfig.model_validate(raw)
    if first.managed_postgres:
        raise BackupError(
            "the first server runs its private PostgreSQL (a Unix socket on its machine): several "
            "servers need one external PostgreSQL (`shoal server init --db DSN`)"
        )
    return first


def _check_database(dsn: str) -> None:
    """The database must already hold a shoal cluster (the first server's)."""
    with connect(dsn) as conn:
        row = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL AS ok").fetchone()
        if not (row and row["ok"]) or current_version(conn) == 0:
            raise BackupError("the database of --db holds no shoal cluster: give the first server's --db")


def _write_files(data_dir: Path, files: dict[str, bytes]) -> None:
    data_dir.mkdir(mode=0o711, parents=True, exist_ok=True)
    for name, data in files.items():
        path = data_dir / name
        path.write_bytes(data)
        path.chmod(0o644 if name in PUBLIC_FILES else 0o600)

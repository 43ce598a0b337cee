"""The server machine's side of backup and restore: pg_dump, pg_restore, the data dir's files.

`make_backup` reads a server's data dir and database (the private PostgreSQL is started for the
dump if it is not running, and stopped again); `restore_backup` fills a fresh data dir from an
archive (see `shoal.control.backup` for its format).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from shoal.control import config as server_config
from shoal.control import postgres
from shoal.control.backup import DUMP, KEY_FILES, BackupError, pack, seal, unpack, unseal
from shoal.control.config import ServerConfig
from shoal.control.store.db import connect
from shoal.control.store.migrate import current_version, latest_version, migrate

PUBLIC_FILES = ("ca.crt", "server.crt", "ingress-ca.crt", "server.json")
VERSION_JUMP = 1 << 32  # past any state version an agent of the backed-up cluster has seen


def _tool(name: str, args: list[str], stdin: bytes | None = None) -> bytes:
    done = subprocess.run(
        [str(postgres.PG_BIN / name), *args], input=stdin, capture_output=True, check=False, timeout=3600
    )
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        raise BackupError(f"{name} failed: {lines[-1] if lines else done.returncode}")
    return done.stdout


def _with_database(config: ServerConfig) -> bool:
    """Start the private PostgreSQL when it is not running; True when this call started it."""
    if not config.managed_postgres or postgres.is_running(config.pg_dir):
        return False
    postgres.start(config.pg_dir)
    return True


def make_backup(data_dir: Path, passphrase: str) -> bytes:
    """The sealed archive of the server in `data_dir`."""
    config = server_config.load(data_dir)
    started = _with_database(config)
    try:
        dump = _tool("pg_dump", ["--format=custom", "--no-owner", f"--dbname={config.dsn}"])
        with connect(config.dsn) as conn:
            schema = current_version(conn)
    finally:
        if started:
            postgres.stop(config.pg_dir)
    files = {name: (data_dir / name).read_bytes() for name in _key_files(data_dir)}
    return seal(pack(dump, files, schema), passphrase)


def _key_files(data_dir: Path) -> list[str]:
    return [name for name in KEY_FILES if (data_dir / name).is_file()]


def restore_backup(sealed: bytes, passphrase: str, data_dir: Path, dsn: str = "") -> ServerConfig:
    """Fill a fresh `data_dir` from an archive; the database is `dsn` (empty) or a new private one."""
    manifest, dump, files = unpack(unseal(sealed, passphrase))
    if int(str(manifest.get("schema", 0))) > latest_version():
        raise BackupError(
            f"the backup's schema ({manifest['schema']}) is newer than this shoal's: upgrade shoal"
        )
    data_dir = data_dir.resolve()
    if (data_dir / server_config.CONFIG_NAME).exists():
        raise BackupError(f"{data_dir} already holds a server (server.json exists): restore into a fresh dir")
    _write_files(data_dir, files)
    config = server_config.load(data_dir).model_copy(update={"data_dir": data_dir})
    config.dsn, config.managed_postgres = (dsn, False) if dsn else (postgres.dsn(config.pg_dir), True)
    if not dsn:
        postgres.init(config.pg_dir)
        postgres.start(config.pg_dir)
    try:
        if not dsn:
            postgres.create_database(postgres.dsn(config.pg_dir, dbname="postgres"), postgres.DB_NAME)
        _load(config.dsn, dump)
    finally:
        if not dsn:
            postgres.stop(config.pg_dir)
    server_config.save(config)
    return config


def _write_files(data_dir: Path, files: dict[str, bytes]) -> None:
    data_dir.mkdir(mode=0o711, parents=True, exist_ok=True)
    for name, data in files.items():
        path = data_dir / name
        path.write_bytes(data)
        path.chmod(0o644 if name in PUBLIC_FILES and name != "server.json" else 0o600)


def _load(dsn: str, dump: bytes) -> None:
    with connect(dsn) as conn:
        used = conn.execute("SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public'").fetchone()
        if used and int(used["n"]):
            raise BackupError("the target database is not empty: restore into an empty database")
    with tempfile.TemporaryDirectory(prefix="shoal-restore-") as tmp:
        path = Path(tmp) / DUMP
        path.write_bytes(dump)
        path.chmod(0o644)  # pg_restore reads it as this user; the directory is private
        args = ["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"]
        _tool("pg_restore", [*args, f"--dbname={dsn}", str(path)])
    with connect(dsn) as conn:
        migrate(conn)
        conn.execute("UPDATE nodes SET state_version = state_version + %s", (VERSION_JUMP,))
        conn.execute("UPDATE cluster SET version = version + %s", (VERSION_JUMP,))

"""A private PostgreSQL under the server's data dir (when `server init` gets no --db).

initdb/pg_ctl from Debian's PostgreSQL 15, run as the `postgres` system user (PostgreSQL refuses
root), listening on a Unix socket in the data dir only (or also a loopback port, for tests).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import psycopg

from shoal.errors import ShoalError
from shoal.model.ports import DATABASE_PORT

PG_BIN = Path(os.environ.get("SHOAL_PG_BIN", "/usr/lib/postgresql/15/bin"))
DB_NAME = "shoal"


class PostgresError(ShoalError):
    """The private PostgreSQL could not be made, started or stopped."""


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _run(cmd: list[str], what: str) -> None:
    done = subprocess.run(_as_postgres(cmd), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise PostgresError(f"{what} failed: {lines[-1] if lines else done.returncode}")


def _own(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


def socket_dir(pg_dir: Path) -> Path:
    return pg_dir / "run"


def dsn(pg_dir: Path, port: int = DATABASE_PORT, dbname: str = DB_NAME) -> str:
    return f"host={socket_dir(pg_dir)} port={port} dbname={dbname} user=postgres"


def init(pg_dir: Path, port: int = DATABASE_PORT, listen: str = "", fast: bool = False) -> None:
    """initdb a cluster under `pg_dir/data`, configured for a Unix socket in `pg_dir/run`."""
    for path in (pg_dir, pg_dir / "data", socket_dir(pg_dir)):
        path.mkdir(mode=0o700, exist_ok=True)
        _own(path)
    pg_dir.parent.chmod(pg_dir.parent.stat().st_mode | 0o011)
    extra = ["--no-sync"] if fast else []
    _run(
        [str(PG_BIN / "initdb"), "-D", str(pg_dir / "data"), "-A", "trust", "-U", "postgres", *extra],
        "initdb",
    )
    settings = (
        f"listen_addresses = '{listen}'\nport = {port}\nunix_socket_directories = '{socket_dir(pg_dir)}'\n"
        "max_connections = 300\n"
    )
    if fast:
        settings += "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
    with (pg_dir / "data" / "postgresql.conf").open("a") as conf:
        conf.write(settings)


def start(pg_dir: Path) -> None:
    log = pg_dir / "postgres.log"
    _run(
        [str(PG_BIN / "pg_ctl"), "-D", str(pg_dir / "data"), "-l", str(log), "-w", "-t", "60", "start"],
        "pg_ctl start",
    )


def stop(pg_dir: Path) -> None:
    _run([str(PG_BIN / "pg_ctl"), "-D", str(pg_dir / "data"), "-m", "fast", "-w", "stop"], "pg_ctl stop")


def is_running(pg_dir: Path) -> bool:
    cmd = [str(PG_BIN / "pg_ctl"), "-D", str(pg_dir / "data"), "status"]
    return subprocess.run(_as_postgres(cmd), capture_output=True, check=False).returncode == 0


def create_database(admin_dsn: str, name: str) -> None:
    """CREATE DATABASE `name` unless it exists (name: letters, digits, '_')."""
    if not name.replace("_", "").isalnum():
        raise PostgresError(f"bad database name {name!r}")
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')

"""`shoal sandbox up --servers N`: servers on n1..nN, one PostgreSQL on n1 that all of them use.

With one server (the default) nothing here runs: the server keeps its private PostgreSQL on a
Unix socket, as before. With several, n1 runs a PostgreSQL of its own on its underlay address
(trust auth, limited to the sandbox's ranges: a sandbox, not a production database), the first
server is made with `server init --db`, and n2..nN are made with `shoal server join` from the
first server's backup archive, as on real machines.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

from shoal.control import postgres
from shoal.sandbox.layout import INET_CIDR, LAN_CIDR, NODE_STATE, SERVER_PORT
from shoal.sandbox.nodes import NodeError, node_dir, run_in
from shoal.sandbox.state import SandboxNode, SandboxState

DB_PORT = 5433
DB_DIR = NODE_STATE / "cluster-db"  # inside n1
ARCHIVE = NODE_STATE / "join.backup"  # inside each node, removed once joined
PASSPHRASE = NODE_STATE / "join.passphrase"


def database_dsn(node: SandboxNode) -> str:
    return f"host={node.address} port={DB_PORT} dbname={postgres.DB_NAME} user=postgres"


def check_servers(servers: int, public: int) -> None:
    """Servers run on the public nodes n1..nN (agents behind the NAT reach them, not the reverse)."""
    if not 1 <= servers <= public:
        raise NodeError(f"--servers must be between 1 and {public} (the public nodes), got {servers}")


def start_database(node: SandboxNode) -> str:
    """The cluster's PostgreSQL on `node`, listening on its address; returns its DSN."""
    argv = [sys.executable, "-m", "shoal.sandbox.servers", str(DB_DIR), node.address]
    done = run_in(node.holder_pid, argv, timeout_s=120)
    if done.returncode != 0:
        raise NodeError(f"node {node.name}: the cluster database did not start: {_tail(done.stderr)}")
    return database_dsn(node)


def _make_database(pg_dir: Path, address: str) -> None:
    """Inside the node: initdb, allow the sandbox's ranges, start, create the database."""
    postgres.init(pg_dir, port=DB_PORT, listen=address, fast=True)
    with (pg_dir / "data" / "pg_hba.conf").open("a") as hba:
        hba.writelines(f"host all postgres {cidr} trust\n" for cidr in (INET_CIDR, LAN_CIDR))
    postgres.start(pg_dir)
    postgres.create_database(postgres.dsn(pg_dir, port=DB_PORT, dbname="postgres"), postgres.DB_NAME)


def join_servers(record: SandboxState, root: Path, count: int, shoal: list[str], data_dir: str) -> list[str]:
    """`shoal server join` on n2..n<count> from n1's backup; returns their advertise URLs."""
    first, others = record.nodes[0], record.nodes[1:count]
    if not others:
        return []
    phrase = secrets.token_urlsafe(24)
    _write(root, first, PASSPHRASE, phrase.encode())
    argv = [*shoal, "server", "backup", "-o", str(ARCHIVE), "--data-dir", data_dir]
    made = run_in(first.holder_pid, [*argv, "--passphrase-file", str(PASSPHRASE)], timeout_s=120)
    if made.returncode != 0:
        raise NodeError(f"node {first.name}: server backup failed: {_tail(made.stderr)}")
    archive = _host(root, first, ARCHIVE).read_bytes()
    join = [*shoal, "server", "join", str(ARCHIVE), "--db", database_dsn(first), "--data-dir", data_dir]
    urls = [_join_one(root, node, archive, phrase, join) for node in others]
    for node in [first, *others]:
        for inside in (ARCHIVE, PASSPHRASE):
            _host(root, node, inside).unlink(missing_ok=True)
    return urls


def _join_one(root: Path, node: SandboxNode, archive: bytes, phrase: str, join: list[str]) -> str:
    _write(root, node, ARCHIVE, archive)
    _write(root, node, PASSPHRASE, phrase.encode())
    url = f"https://{node.address}:{SERVER_PORT}"
    argv = [*join, "--advertise", url, "--listen", f"0.0.0.0:{SERVER_PORT}", "--node", node.name]
    argv += ["--passphrase-file", str(PASSPHRASE)]
    done = run_in(node.holder_pid, argv, timeout_s=120)
    if done.returncode != 0:
        raise NodeError(f"node {node.name}: server join failed: {_tail(done.stderr)}")
    return url


def _host(root: Path, node: SandboxNode, inside: Path) -> Path:
    return node_dir(root, node.name) / inside.relative_to(NODE_STATE)


def _write(root: Path, node: SandboxNode, inside: Path, data: bytes) -> None:
    path = _host(root, node, inside)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_bytes(data)


def _tail(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else "no output"


if __name__ == "__main__":  # run inside n1 by start_database
    _make_database(Path(sys.argv[1]), sys.argv[2])

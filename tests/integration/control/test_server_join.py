"""`shoal server join` and `shoal server ls` against real servers on one PostgreSQL: a joined
server has its own certificate for its own URL, serves the same cluster, both record themselves
in `servers`, and it leads once the first is killed; a private-database first server is refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from cryptography import x509

from shoal.control.backup import pack, seal
from tests.integration.control.helpers import wait_for
from tests.support.server_fixtures import Server, ServerFactory, free_port, shoal

PHRASE = "several servers, one database"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "SHOAL_BACKUP_PASSPHRASE": PHRASE, **(env or {})}
    return subprocess.run(shoal(*args), capture_output=True, text=True, timeout=120, check=False, env=full)


def _servers(srv: Server) -> list[dict[str, Any]]:
    with srv.client() as c:
        return list(c.get("/api/v1/servers").json())


def _leader(srv: Server) -> str:
    return next((s["url"] for s in _servers(srv) if s["leader"]), "")


def _join(first: Server, tmp: Path) -> Server:
    archive = tmp / "first.backup"
    made = run("server", "backup", "-o", str(archive), "--data-dir", str(first.data_dir))
    assert made.returncode == 0, made.stderr
    port = free_port()
    url, data_dir = f"https://127.0.0.1:{port}", tmp / "second"
    args = ["--db", first.dsn, "--advertise", url, "--listen", f"127.0.0.1:{port}", "--node", "second"]
    done = run("server", "join", str(archive), "--data-dir", str(data_dir), *args)
    assert done.returncode == 0, done.stderr
    return Server(url, str(data_dir / "ca.crt"), first.admin_token, first.join_token, data_dir, first.dsn)


def test_a_joined_server_serves_the_cluster_and_takes_over(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    first = server_factory()
    second = _join(first, tmp_path)
    own = x509.load_pem_x509_certificate((second.data_dir / "server.crt").read_bytes())
    assert own != x509.load_pem_x509_certificate((first.data_dir / "server.crt").read_bytes())
    assert (second.data_dir / "ca.crt").read_bytes() == Path(first.ca).read_bytes()
    try:
        second.start()
        wait_for(lambda: len(_servers(second)) == 2 and _leader(second) == first.url, what="both servers")
        env = {"SHOAL_SERVER": second.url, "SHOAL_TOKEN": second.admin_token, "SHOAL_CACERT": second.ca}
        listed = run("server", "ls", "--output", "json", env=env)
        assert listed.returncode == 0, listed.stderr
        rows = {r["url"]: r for r in json.loads(listed.stdout)}
        assert rows[second.url]["node"] == "second" and not rows[second.url]["leader"]
        assert rows[first.url]["leader"] and {"node", "url", "leader", "version", "last_seen"} <= set(
            rows[first.url]
        )
        table = run("server", "ls", env=env).stdout.splitlines()
        assert table[0].split() == ["NODE", "URL", "LEADER", "VERSION", "LAST", "SEEN"]
        assert first.proc is not None
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait()
        wait_for(lambda: _leader(second) == second.url, timeout=15, what="the joined server to lead")
    finally:
        second.kill()


def test_join_refuses_a_first_server_on_its_private_database(tmp_path: Path) -> None:
    config = {"data_dir": "/var/lib/shoal/server", "dsn": "host=/x dbname=shoal", "managed_postgres": True}
    files = {"server.json": json.dumps(config).encode(), "ca.crt": b"", "ca.key": b"", "secrets.key": b""}
    archive = tmp_path / "private.backup"
    archive.write_bytes(seal(pack(b"", files, 1), PHRASE))
    args = [
        "--db",
        "host=/nowhere",
        "--advertise",
        "https://10.0.0.2:7443",
        "--data-dir",
        str(tmp_path / "d"),
    ]
    done = run("server", "join", str(archive), *args)
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1
    assert "private PostgreSQL" in done.stderr and not (tmp_path / "d").exists()

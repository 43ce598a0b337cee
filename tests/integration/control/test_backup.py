"""`shoal server backup` and `restore` against real servers and PostgreSQL: a restored server
holds every service, secret, token and node credential of the one backed up, its agents get
their state again (a newer version, the same containers), and a bad archive or passphrase is
one line."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from shoal.control import postgres as pg
from tests.integration.control.helpers import join, node_client, put_services, wait_for, web_spec
from tests.support.server_fixtures import Postgres, Server, ServerFactory, free_port, shoal

PHRASE = "correct horse battery staple"
SECRET = b"hunter2-restored"


def run(*args: str, phrase: str = PHRASE) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SHOAL_BACKUP_PASSPHRASE": phrase}
    return subprocess.run(shoal(*args), capture_output=True, text=True, timeout=300, check=False, env=env)


def _populate(server: Server) -> dict[str, object]:
    joined = join(server, "b1")
    with server.client() as admin:
        value = base64.b64encode(SECRET).decode()
        assert admin.post("/api/v1/secrets", json={"name": "dbpass", "value_b64": value}).status_code == 200
    mount = {"kind": "secret", "source": "dbpass", "target": "/run/secrets/dbpass"}
    put_services(server, "p", {"db": web_spec("db", replicas=1, template={"mounts": [mount]})})
    wait_for(lambda: server.client().get("/api/v1/tasks").json(), what="placement")
    return joined


def test_a_restored_server_serves_the_same_cluster(server_factory: ServerFactory, postgres: Postgres) -> None:
    old = server_factory()
    joined = _populate(old)
    with node_client(old, joined) as node:
        before = node.get("/api/v1/nodes/b1/state").json()
    archive = old.data_dir.parent / "cluster.backup"
    made = run("server", "backup", "-o", str(archive), "--data-dir", str(old.data_dir))
    assert made.returncode == 0, made.stderr
    assert PHRASE.encode() not in archive.read_bytes() and b"BEGIN" not in archive.read_bytes()
    old.kill()
    new_dir, dsn = old.data_dir.parent / "restored", postgres.new_database()
    done = run("server", "restore", str(archive), "--data-dir", str(new_dir), "--db", dsn)
    assert done.returncode == 0, done.stderr
    port = free_port()
    new = Server(f"https://127.0.0.1:{port}", str(new_dir / "ca.crt"), old.admin_token, "", new_dir, dsn)
    try:
        new.start(listen=f"127.0.0.1:{port}")
        with new.client() as admin:
            assert [(s["project"], s["name"]) for s in admin.get("/api/v1/services").json()] == [("p", "db")]
            assert [s["name"] for s in admin.get("/api/v1/secrets").json()] == ["dbpass"]
        with node_client(new, joined) as node:
            after = node.get("/api/v1/nodes/b1/state").json()
        assert after["version"] > before["version"]
        assert [c["id"] for c in after["containers"]] == [c["id"] for c in before["containers"]]
        assert base64.b64decode(after["secrets"][0]["value_b64"]) == SECRET
    finally:
        new.kill()


def test_a_wrong_passphrase_or_a_used_dir_is_one_line(server: Server, tmp_path: Path) -> None:
    archive = tmp_path / "b.backup"
    assert run("server", "backup", "-o", str(archive), "--data-dir", str(server.data_dir)).returncode == 0
    wrong = run("server", "restore", str(archive), "--data-dir", str(tmp_path / "x"), phrase="nope")
    assert wrong.returncode == 1
    assert wrong.stderr.strip() == "error: wrong passphrase, or the backup file is damaged"
    used = run("server", "restore", str(archive), "--data-dir", str(server.data_dir), "--db", server.dsn)
    assert used.returncode == 1 and len(used.stderr.strip().splitlines()) == 1
    assert "already holds a server" in used.stderr
    damaged = tmp_path / "d.backup"
    damaged.write_bytes(archive.read_bytes()[:-40])
    bad = run("server", "restore", str(damaged), "--data-dir", str(tmp_path / "y"))
    assert bad.returncode == 1 and "wrong passphrase, or the backup file is damaged" in bad.stderr
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_a_private_postgres_is_dumped_stopped_and_restored_into_a_new_one() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="shs-backup-"))
    tmp.chmod(0o711)  # the postgres user must reach the data dirs
    port = free_port()
    first, second = tmp / "first", tmp / "second"
    try:
        init = run(
            "server", "init", "--data-dir", str(first), "--listen", f"127.0.0.1:{port}", "--output", "json"
        )
        assert init.returncode == 0, init.stderr
        assert run("server", "backup", "-o", str(tmp / "b"), "--data-dir", str(first)).returncode == 0
        assert not pg.is_running(first / "postgres")  # started for the dump, stopped again
        done = run("server", "restore", str(tmp / "b"), "--data-dir", str(second))
        assert done.returncode == 0, done.stderr
        assert (second / "ca.key").stat().st_mode & 0o777 == 0o600
        assert (second / "ca.key").read_bytes() == (first / "ca.key").read_bytes()
        pg.start(second / "postgres")
        try:
            got = subprocess.run(
                [str(pg.PG_BIN / "psql"), pg.dsn(second / "postgres"), "-Atc", "SELECT count(*) FROM tokens"],
                capture_output=True,
                text=True,
                check=False,
            )
            assert got.stdout.strip() == "1", got.stderr  # the first admin token
        finally:
            pg.stop(second / "postgres")
    finally:
        for data in (first, second):
            if pg.is_running(data / "postgres"):
                pg.stop(data / "postgres")
        shutil.rmtree(tmp, ignore_errors=True)


def test_scheduled_backups_keep_the_newest(server: Server, postgres: Postgres, tmp_path: Path) -> None:
    """What `shoal-backup.timer` runs: each run a new archive in the directory, the oldest beyond
    `--keep` removed, an archive copied in by hand left alone; the newest restores."""
    kept = tmp_path / "backups"
    kept.mkdir()
    (kept / "before-upgrade.sbk").write_bytes(b"hand")
    for _ in range(3):
        made = run("server", "backup", "--dir", str(kept), "--keep", "2", "--data-dir", str(server.data_dir))
        assert made.returncode == 0, made.stderr
    archives = sorted(p.name for p in kept.iterdir() if p.name.startswith("shoal-backup-"))
    assert len(archives) == 2 and (kept / "before-upgrade.sbk").exists()
    newest, empty = str(kept / archives[-1]), postgres.new_database()
    restored = run("server", "restore", newest, "--data-dir", str(tmp_path / "new"), "--db", empty)
    assert restored.returncode == 0, restored.stderr

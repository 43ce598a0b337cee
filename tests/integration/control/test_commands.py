"""`shoal server init` without --db: a private PostgreSQL under the data dir, started and stopped
with `shoal server start`; `server install` writes a systemd unit."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from shoal.control import postgres as pg
from tests.support.server_fixtures import Server, ServerFactory, free_port, shoal


def test_init_and_start_with_a_private_postgres() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="shs-managed-"))
    tmp.chmod(0o711)  # the postgres user must reach the data dir
    data_dir, port = tmp / "server", free_port()
    srv = None
    try:
        done = subprocess.run(
            shoal(
                "server",
                "init",
                "--data-dir",
                str(data_dir),
                "--listen",
                f"127.0.0.1:{port}",
                "--advertise",
                f"https://127.0.0.1:{port}",
                "--output",
                "json",
            ),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        info = json.loads(done.stdout)
        assert set(info) == {"admin_token", "join_token", "ca", "url"}
        config = json.loads((data_dir / "server.json").read_text())
        assert (
            config["managed_postgres"]
            and "listen_addresses = ''" in (data_dir / "postgres" / "data" / "postgresql.conf").read_text()
        )
        assert not pg.is_running(data_dir / "postgres")
        srv = Server(
            info["url"], info["ca"], info["admin_token"], info["join_token"], data_dir, config["dsn"]
        )
        srv.start()
        assert pg.is_running(data_dir / "postgres")
        with srv.client() as c:
            assert c.get("/api/v1/nodes").status_code == 200
        srv.kill(signal.SIGTERM)
        assert srv.proc is not None and srv.proc.returncode == 0
        assert not pg.is_running(data_dir / "postgres")
    finally:
        if srv is not None:
            srv.kill()
        if pg.is_running(data_dir / "postgres"):
            pg.stop(data_dir / "postgres")
        shutil.rmtree(tmp, ignore_errors=True)


def test_install_writes_a_systemd_unit(tmp_path: Path) -> None:
    done = subprocess.run(
        shoal("server", "install", "--data-dir", str(tmp_path / "d"), "--unit-dir", str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    unit = (tmp_path / "shoal-server.service").read_text()
    assert "server start --data-dir" in unit and "Restart=always" in unit


def test_a_stop_ends_the_long_polls_it_holds(server_factory: ServerFactory) -> None:
    """SIGTERM with a node's long-poll in flight: the server ends it and exits in seconds, not
    when the poll's wait runs out."""
    import threading
    import time

    from tests.integration.control.helpers import join, node_client

    srv = server_factory()
    node = join(srv, "lp")
    answered: list[int] = []
    with node_client(srv, node) as n:
        version = n.get("/api/v1/nodes/lp/state").json()["version"]

        def poll() -> None:
            answered.append(
                n.get("/api/v1/nodes/lp/state", params={"since": version, "wait": 40}).status_code
            )

        waiter = threading.Thread(target=poll)
        waiter.start()
        time.sleep(1)
        began = time.monotonic()
        srv.kill(signal.SIGTERM)
        took = time.monotonic() - began
        waiter.join(10)
    assert srv.proc is not None and srv.proc.returncode == 0
    assert took < 10, f"the stop took {took:.1f}s"
    assert answered == [200]

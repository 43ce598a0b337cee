"""Leader loss: kill -9 the leading server → first successful API write, and → a new leader.

Two servers on one PostgreSQL (the second made with `shoal server join` from the first's
backup), both started. Each run finds the leader, kills it with SIGKILL and times, polling every
20 ms: the first successful write (`POST /api/v1/secrets`) through a client that starts at the
killed server's URL and fails over to the other (as the CLI and agents do), and the first answer
in which the other server's controller leads. The killed server is then started again (standby).
Same-run baseline: the same write on a healthy server. Target: write ≤ 10 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from tempfile import mkdtemp

import httpx

from shoal.client import Client
from tests.support.server_fixtures import Server, free_port, init_server, running_postgres, shoal, tls

PHRASE = "leader loss benchmark"


def joined(first: Server, tmp: Path) -> Server:
    """A second server of `first`'s cluster, made from its backup on the same database."""
    env = {**os.environ, "SHOAL_BACKUP_PASSPHRASE": PHRASE}
    archive = tmp / "first.backup"
    subprocess.run(
        shoal("server", "backup", "-o", str(archive), "--data-dir", str(first.data_dir)),
        env=env,
        check=True,
        capture_output=True,
    )
    port = free_port()
    url, data_dir = f"https://127.0.0.1:{port}", tmp / "second"
    args = [
        "--db",
        first.dsn,
        "--advertise",
        url,
        "--listen",
        f"127.0.0.1:{port}",
        "--data-dir",
        str(data_dir),
    ]
    subprocess.run(shoal("server", "join", str(archive), *args), env=env, check=True, capture_output=True)
    return Server(url, str(data_dir / "ca.crt"), first.admin_token, first.join_token, data_dir, first.dsn)


def role(srv: Server) -> str:
    try:
        return str(httpx.get(f"{srv.url}/api/v1/health", verify=tls(srv.ca), timeout=1).json()["controller"])
    except httpx.HTTPError:
        return "unreachable"


def wait(check: Callable[[], bool], timeout_s: float = 30) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout_s:
            raise RuntimeError("timed out")
        time.sleep(0.02)
    return time.monotonic() - start


def write(client: Client, name: str) -> bool:
    try:
        client.create_secret(name, b"x")
    except Exception:  # any failure: not yet
        return False
    return True


def one_run(servers: list[Server], run: int) -> tuple[float, float]:
    """(seconds to the first write, seconds to the new leader) after killing the leader."""
    wait(lambda: sum(role(s) == "leader" for s in servers) == 1)
    leader = next(s for s in servers if role(s) == "leader")
    other = next(s for s in servers if s is not leader)
    client = Client(leader.url, leader.admin_token, Path(leader.ca), servers=[s.url for s in servers])
    assert leader.proc is not None
    leader.proc.send_signal(signal.SIGKILL)
    start = time.monotonic()
    leader.proc.wait()
    wrote = wait(lambda: write(client, f"loss{run}"))
    wait(lambda: role(other) == "leader")
    led = time.monotonic() - start
    client.close()
    leader.start()
    return wrote, led


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with running_postgres() as pg:
        tmp = Path(mkdtemp(prefix="shs-bench-"))
        first = init_server(pg.new_database(), tmp / "first", free_port())
        second = joined(first, tmp)
        servers = [first, second]
        try:
            first.start()
            second.start()
            with Client(first.url, first.admin_token, Path(first.ca)) as healthy:
                baseline = [wait(lambda i=i: write(healthy, f"base{i}")) for i in range(args.runs)]
            runs = [one_run(servers, i) for i in range(args.runs)]
        finally:
            for srv in servers:
                srv.kill()
            shutil.rmtree(tmp, ignore_errors=True)
    writes, leads = [w for w, _ in runs], [led for _, led in runs]
    print(
        json.dumps(
            {
                "benchmark": "leader_loss",
                "runs": args.runs,
                "first_write_median_s": round(statistics.median(writes), 3),
                "first_write_max_s": round(max(writes), 3),
                "new_leader_median_s": round(statistics.median(leads), 3),
                "baseline_write_median_s": round(statistics.median(baseline), 4),
                "target_first_write_s": 10,
            }
        )
    )


if __name__ == "__main__":
    main()

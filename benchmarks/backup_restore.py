"""Backup and restore of a server with 100 services, against plain pg_dump/pg_restore of the same DB.

A server data dir is made with `shoal server init` against a throwaway PostgreSQL; 100 services
(each its revision and a replica) are stored as a deploy stores them. Then, over `--runs` runs:
`shoal server backup` (pg_dump plus the key files, sealed) and `shoal server restore` into a new
empty database, each timed as the CLI runs it; the baseline is `pg_dump -Fc` then `pg_restore`
of the same database into another empty one. Medians and ratios in one JSON line.
Run: ``.venv/bin/python benchmarks/backup_restore.py [--services 100 --runs 5]`` (root).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from tempfile import mkdtemp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from shoal.control import deploy
from shoal.control import postgres as pg
from shoal.control.revision import RevisionSpec
from shoal.control.store.db import connect
from tests.support.server_fixtures import Postgres, free_port, init_server, running_postgres, shoal

PHRASE = "benchmark passphrase"


def timed(argv: list[str]) -> float:
    began = time.monotonic()
    env = {**os.environ, "SHOAL_BACKUP_PASSPHRASE": PHRASE}
    subprocess.run(argv, check=True, capture_output=True, env=env, timeout=600)
    return time.monotonic() - began


def populate(dsn: str, count: int) -> None:
    specs = {
        f"svc{i}": RevisionSpec.model_validate(
            {"template": {"id": "", "service": f"svc{i}", "image": "registry:5000/web:1"}, "replicas": 1}
        )
        for i in range(count)
    }
    with connect(dsn, autocommit=False) as conn:
        deploy.store(conn, "bench", specs)
        conn.commit()


def one_run(postgres: Postgres, data_dir: Path, work: Path, run: int) -> dict[str, float]:
    archive, dump = work / f"b{run}.backup", work / f"b{run}.dump"
    source = str(json.loads((data_dir / "server.json").read_text())["dsn"])
    backup_s = timed(shoal("server", "backup", "-o", str(archive), "--data-dir", str(data_dir)))
    target = postgres.new_database()
    restore_s = timed(
        shoal("server", "restore", str(archive), "--data-dir", str(work / f"r{run}"), "--db", target)
    )
    dump_s = timed(
        [str(pg.PG_BIN / "pg_dump"), "--format=custom", "--no-owner", f"--dbname={source}", "-f", str(dump)]
    )
    dump.chmod(0o644)
    plain = postgres.new_database()
    args = ["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"]
    pg_restore_s = timed([str(pg.PG_BIN / "pg_restore"), *args, f"--dbname={plain}", str(dump)])
    return {"backup": backup_s, "restore": restore_s, "pg_dump": dump_s, "pg_restore": pg_restore_s}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    opts = parser.parse_args()
    work = Path(mkdtemp(prefix="shoal-bench-backup-"))
    work.chmod(0o711)
    try:
        with running_postgres() as postgres:
            dsn = postgres.new_database()
            init_server(dsn, work / "server", free_port())
            populate(dsn, opts.services)
            runs = [one_run(postgres, work / "server", work, i) for i in range(opts.runs)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(
        json.dumps(
            {
                "benchmark": "backup_restore",
                "services": opts.services,
                "runs": opts.runs,
                "backup_median_s": round(median["backup"], 3),
                "restore_median_s": round(median["restore"], 3),
                "baseline_pg_dump_median_s": round(median["pg_dump"], 3),
                "baseline_pg_restore_median_s": round(median["pg_restore"], 3),
                "backup_ratio": round(median["backup"] / median["pg_dump"], 2),
                "restore_ratio": round(median["restore"] / median["pg_restore"], 2),
            }
        )
    )


if __name__ == "__main__":
    main()

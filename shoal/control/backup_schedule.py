"""Scheduled backups: archive names, which old archives retention removes, the systemd timer
`shoal server install --backup-every` writes (pure), and the step that stores one archive.

A scheduled backup is `shoal server backup --dir DIR --keep N` run by `shoal-backup.timer`: each
run writes `shoal-backup-<UTC time>.sbk` into DIR and removes the oldest of that name beyond the
newest N. Only files of that pattern are ever removed, so a backup copied in by hand stays.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ARCHIVE = re.compile(r"^shoal-backup-(\d{8}T\d{12}Z)\.sbk$")  # to the microsecond: sortable, unique

SERVICE = """[Unit]
Description=shoal scheduled backup
After=shoal-server.service

[Service]
Type=oneshot
ExecStart={exe} server backup --data-dir {data_dir} --dir {dir} --keep {keep} --passphrase-file {passphrase}
"""

TIMER = """[Unit]
Description=shoal scheduled backup, every {every_s}s

[Timer]
OnBootSec=300
OnUnitActiveSec={every_s}
Persistent=true

[Install]
WantedBy=timers.target
"""


@dataclass(frozen=True)
class Schedule:
    """A backup every `every_s` into `directory`, keeping `keep` archives."""

    every_s: float
    directory: Path
    keep: int
    passphrase_file: Path


def archive_name(now: datetime) -> str:
    return f"shoal-backup-{now.astimezone(UTC):%Y%m%dT%H%M%S%fZ}.sbk"


def to_prune(names: Iterable[str], keep: int) -> list[str]:
    """The scheduled archives beyond the newest `keep` (their names sort by time)."""
    ours = sorted((n for n in names if ARCHIVE.match(n)), reverse=True)
    return ours[max(keep, 1) :]


def units(exe: Path, data_dir: Path, schedule: Schedule) -> dict[str, str]:
    """The unit files (name → text) of the schedule."""
    service = SERVICE.format(
        exe=exe,
        data_dir=data_dir,
        dir=schedule.directory,
        keep=schedule.keep,
        passphrase=schedule.passphrase_file,
    )
    timer = TIMER.format(every_s=int(schedule.every_s))
    return {"shoal-backup.service": service, "shoal-backup.timer": timer}


def store(directory: Path, sealed: bytes, keep: int | None, now: datetime) -> Path:
    """Write `sealed` as a new archive in `directory` (0600), pruning beyond the newest `keep`."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    out = directory / archive_name(now)
    out.write_bytes(sealed)
    out.chmod(0o600)
    for name in to_prune((p.name for p in directory.iterdir()), keep) if keep else ():
        (directory / name).unlink()
    return out

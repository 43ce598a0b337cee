"""Scheduled backups (control.backup_schedule, `server install --backup-every`): archive names
sort by time, retention removes only the oldest scheduled archives, the timer runs the backup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from shoal.control import backup_schedule as bs
from shoal.control.commands import server

NOW = datetime(2026, 12, 5, 13, 30, 0, 123456, tzinfo=UTC)


def test_names_sort_by_time_and_only_the_oldest_scheduled_ones_go() -> None:
    names = [bs.archive_name(NOW + timedelta(hours=h)) for h in range(5)]
    assert names[0] == "shoal-backup-20261205T133000123456Z.sbk"
    hand = ["before-upgrade.sbk", "shoal-backup-notes.txt"]
    assert bs.to_prune([*names, *hand], keep=2) == sorted(names[:3], reverse=True)
    assert bs.to_prune(names, keep=9) == []


def test_store_writes_0600_and_keeps_the_newest(tmp_path: Path) -> None:
    (tmp_path / "mine.sbk").write_bytes(b"x")
    for h in range(4):
        bs.store(tmp_path / "b", b"sealed", 2, NOW + timedelta(hours=h))
    kept = sorted(p.name for p in (tmp_path / "b").iterdir())
    assert kept == [bs.archive_name(NOW + timedelta(hours=h)) for h in (2, 3)]
    assert ((tmp_path / "b" / kept[0]).stat().st_mode & 0o777) == 0o600


def test_install_writes_the_timer_and_its_backup(tmp_path: Path) -> None:
    phrase = tmp_path / "phrase"
    phrase.write_text("p")
    args = ["install", "--unit-dir", str(tmp_path), "--data-dir", "/var/lib/shoal/server"]
    got = CliRunner().invoke(server, [*args, "--backup-every", "6h", "--backup-passphrase-file", str(phrase)])
    assert got.exit_code == 0, got.output
    service = (tmp_path / "shoal-backup.service").read_text()
    assert f"--dir /var/backups/shoal --keep 7 --passphrase-file {phrase}" in service
    assert "OnUnitActiveSec=21600" in (tmp_path / "shoal-backup.timer").read_text()
    assert "shoal-backup.timer" in got.output


def test_a_timer_without_a_passphrase_file_is_one_line(tmp_path: Path) -> None:
    got = CliRunner().invoke(server, ["install", "--unit-dir", str(tmp_path), "--backup-every", "1d"])
    assert got.exit_code == 1 and "needs --backup-passphrase-file" in got.output
    assert not (tmp_path / "shoal-backup.timer").exists()
    got = CliRunner().invoke(server, ["backup", "--keep", "3", "-o", str(tmp_path / "x")])
    assert got.exit_code == 1 and "--keep goes with --dir" in got.output

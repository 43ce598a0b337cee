"""The backup archive: sealed with a passphrase, every fault one line, only a backup's own names read."""

from __future__ import annotations

import io
import tarfile

import pytest

from shoal.control.backup import MAGIC, BackupError, pack, seal, unpack, unseal


def test_an_archive_round_trips_and_hides_its_contents() -> None:
    sealed = seal(pack(b"DUMP", {"ca.key": b"-----BEGIN KEY-----"}, 10), "pw")
    assert sealed.startswith(MAGIC) and b"BEGIN" not in sealed
    manifest, dump, files = unpack(unseal(sealed, "pw"))
    assert (manifest["schema"], manifest["files"], dump, files) == (
        10,
        ["ca.key"],
        b"DUMP",
        {"ca.key": b"-----BEGIN KEY-----"},
    )


@pytest.mark.parametrize(
    ("mangle", "phrase", "error"),
    [
        (lambda b: b, "wrong", "wrong passphrase, or the backup file is damaged"),
        (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "pw", "wrong passphrase, or the backup file is damaged"),
        (lambda b: b"PK\x03\x04" + b, "pw", "not a shoal backup (its first bytes are not a shoal backup's)"),
        (lambda b: b, "", "the backup passphrase is empty"),
    ],
)
def test_a_bad_archive_or_passphrase_is_one_line(mangle, phrase: str, error: str) -> None:  # type: ignore[no-untyped-def]
    sealed = seal(pack(b"DUMP", {}, 1), "pw")
    with pytest.raises(BackupError) as got:
        unseal(mangle(sealed), phrase)
    assert str(got.value) == error


def test_names_a_backup_does_not_hold_are_never_read() -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in [
            ("manifest.json", b'{"schema": 1}'),
            ("database.dump", b"D"),
            ("../../etc/cron.d/x", b"evil"),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    _, _, files = unpack(out.getvalue())
    assert files == {}


def test_an_archive_without_a_dump_is_refused() -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz"):
        pass
    with pytest.raises(BackupError, match="no manifest or no database dump"):
        unpack(out.getvalue())

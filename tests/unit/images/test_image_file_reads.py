"""Reading an image's /etc/passwd and /etc/group (runtime.overlay.read_image_file) from layers
unpacked out of crafted hostile tars: a FIFO never blocks, a symlink never leads to the host."""

from __future__ import annotations

import io
import os
import tarfile
import threading
from pathlib import Path

from shoal.agent.images.extract import extract_layer
from shoal.agent.runtime import overlay
from shoal.sandbox.images import tar_entry
from tests.support.registry_fixtures import crafted_tar, file_entry, link_entry

WHAT = "image test/hostile layer sha256:" + "c" * 64


def unpacked(tmp_path: Path, *entries: tuple[tarfile.TarInfo, bytes]) -> Path:
    root = tmp_path / "layer"
    root.mkdir()
    extract_layer(io.BytesIO(crafted_tar(*entries)), root, WHAT)
    return root


def read_with_watchdog(root: Path, relative: str, fifo: Path | None = None) -> str:
    """Read on a thread; a read still blocked after 5 s fails the test (the FIFO is then opened
    for writing, so the thread ends instead of hanging the run)."""
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(overlay.read_image_file(root, relative)))
    reader.start()
    reader.join(5)
    blocked = reader.is_alive()
    if blocked and fifo is not None:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(5)
    assert not blocked, f"reading {relative} blocked"
    return result[0]


def test_a_fifo_at_etc_passwd_does_not_block(tmp_path: Path) -> None:
    root = unpacked(
        tmp_path,
        (tar_entry("etc", tarfile.DIRTYPE, mode=0o755), b""),
        (tar_entry("etc/passwd", tarfile.FIFOTYPE), b""),
    )
    assert (root / "etc" / "passwd").is_fifo()
    assert read_with_watchdog(root, "etc/passwd", root / "etc" / "passwd") == ""


def test_a_symlink_to_a_host_file_is_not_followed(tmp_path: Path) -> None:
    host = tmp_path / "host-passwd"
    host.write_text("hostuser:x:0:0::/root:/bin/sh\n")
    root = unpacked(tmp_path, link_entry("etc/passwd", str(host)), link_entry("etc/group", "/etc/group"))
    assert read_with_watchdog(root, "etc/passwd") == ""
    assert read_with_watchdog(root, "etc/group") == ""


def test_a_symlinked_etc_dir_is_not_followed(tmp_path: Path) -> None:
    root = unpacked(tmp_path, link_entry("etc", "/etc"))
    assert read_with_watchdog(root, "etc/passwd") == ""


def test_a_directory_at_etc_passwd_reads_as_nothing(tmp_path: Path) -> None:
    root = unpacked(tmp_path, (tar_entry("etc/passwd", tarfile.DIRTYPE, mode=0o755), b""))
    assert read_with_watchdog(root, "etc/passwd") == ""


def test_a_regular_passwd_is_read(tmp_path: Path) -> None:
    root = unpacked(tmp_path, file_entry("etc/passwd", b"app:x:1000:1000::/home/app:/bin/sh\n"))
    assert read_with_watchdog(root, "etc/passwd").startswith("app:x:1000")

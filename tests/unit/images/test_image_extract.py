"""The safe layer extractor on crafted in-memory tarballs: escapes, whiteouts, links, zstd."""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest
import zstandard

from shoal.agent.images import ImageError
from shoal.agent.images.extract import climbs_out, extract_layer, split_name, unpack_blob
from shoal.sandbox.images import tar_entry
from tests.support.registry_fixtures import (
    crafted_tar,
    device_entry,
    file_entry,
    hostile_layers,
    link_entry,
)

WHAT = "image test/ref layer sha256:abc"
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown, mknod, trusted xattrs)")


def dir_entry(name: str, mode: int = 0o755) -> tuple[tarfile.TarInfo, bytes]:
    return tar_entry(name, tarfile.DIRTYPE, mode=mode), b""


def extract(tmp_path: Path, data: bytes) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    extract_layer(io.BytesIO(data), root, WHAT)
    return root


@pytest.mark.parametrize("kind", sorted(hostile_layers()))
def test_every_hostile_layer_is_rejected_and_nothing_escapes(tmp_path: Path, kind: str) -> None:
    canary = tmp_path / "canary"
    canary.mkdir()
    layer = hostile_layers(canary)[kind]
    passwd_links = os.stat("/etc/passwd").st_nlink
    with pytest.raises(ImageError) as caught:
        extract(tmp_path, layer)
    message = str(caught.value)
    assert message.startswith(WHAT + ": entry ")
    assert "\n" not in message
    assert list(canary.iterdir()) == []
    assert os.stat("/etc/passwd").st_nlink == passwd_links


@pytest.mark.parametrize(
    ("entries", "reason"),
    [
        ([file_entry("../x")], "'..' path component"),
        ([file_entry("a/../../x")], "'..' path component"),
        ([file_entry("/abs")], "absolute path"),
        ([link_entry("l", "../../x")], "climbs out"),
        ([link_entry("a/l", "../../x")], "climbs out"),
        ([link_entry("l", "/../x")], "climbs out"),
        ([link_entry("h", "/etc/passwd", tarfile.LNKTYPE)], "absolute path"),
        ([link_entry("h", "nothing-here", tarfile.LNKTYPE)], "not in this layer"),
        ([device_entry("null", 1, 3)], "device node"),
        ([(tar_entry("blk", tarfile.BLKTYPE), b"")], "device node"),
        ([dir_entry("d"), link_entry("l", "d"), file_entry("l/x")], "parent 'l' is a symlink"),
        ([link_entry("l", "/"), dir_entry("l/etc")], "parent 'l' is a symlink"),
        ([file_entry("f"), file_entry("f/x")], "parent 'f' is not a directory"),
        ([dir_entry("d"), link_entry("l", "d"), link_entry("h", "l/x", tarfile.LNKTYPE)], "is a symlink"),
    ],
)
def test_unsafe_entries_name_the_reason(
    tmp_path: Path, entries: list[tuple[tarfile.TarInfo, bytes]], reason: str
) -> None:
    with pytest.raises(ImageError, match=reason):
        extract(tmp_path, crafted_tar(*entries))


def test_files_dirs_modes_and_mtimes(tmp_path: Path) -> None:
    info, data = file_entry("a/b/run.sh", b"#!/bin/sh\n")
    info.mode, info.mtime = 0o4755, 1_600_000_000
    root = extract(tmp_path, crafted_tar(dir_entry("a", 0o750), (info, data)))
    script = root / "a" / "b" / "run.sh"
    assert script.read_bytes() == b"#!/bin/sh\n"
    assert stat.S_IMODE(script.stat().st_mode) == 0o4755
    assert script.stat().st_mtime == 1_600_000_000
    assert stat.S_IMODE((root / "a").stat().st_mode) == 0o750
    assert (root / "a").stat().st_mtime == tar_entry("a").mtime
    assert (root / "a" / "b").is_dir()


@as_root
def test_ownership_is_kept_as_root(tmp_path: Path) -> None:
    info, data = file_entry("owned")
    info.uid, info.gid = 1234, 5678
    link, _ = link_entry("link", "owned")
    link.uid, link.gid = 42, 43
    root = extract(tmp_path, crafted_tar((info, data), (link, b"")))
    assert (root / "owned").stat().st_uid == 1234
    assert (root / "owned").stat().st_gid == 5678
    assert (root / "link").lstat().st_uid == 42


def test_symlinks_inside_the_root_are_kept(tmp_path: Path) -> None:
    entries = [file_entry("bin/busybox"), link_entry("bin/sh", "/bin/busybox"), link_entry("lib", "usr/lib")]
    root = extract(tmp_path, crafted_tar(*entries, link_entry("a/b/up", "../../bin")))
    assert os.readlink(root / "bin" / "sh") == "/bin/busybox"
    assert os.readlink(root / "lib") == "usr/lib"
    assert os.readlink(root / "a" / "b" / "up") == "../../bin"


def test_hard_links_share_the_inode(tmp_path: Path) -> None:
    entries = [file_entry("bin/busybox", b"elf"), link_entry("sbin/init", "bin/busybox", tarfile.LNKTYPE)]
    root = extract(tmp_path, crafted_tar(*entries))
    assert (root / "sbin" / "init").stat().st_ino == (root / "bin" / "busybox").stat().st_ino
    assert (root / "bin" / "busybox").stat().st_nlink == 2


def test_fifo_is_created(tmp_path: Path) -> None:
    root = extract(tmp_path, crafted_tar((tar_entry("run/pipe", tarfile.FIFOTYPE, mode=0o620), b"")))
    assert stat.S_ISFIFO((root / "run" / "pipe").lstat().st_mode)


@as_root
def test_whiteouts_become_overlay_whiteouts(tmp_path: Path) -> None:
    entries = [
        file_entry("etc/gone"),
        file_entry("etc/.wh.gone"),
        file_entry("data/.wh.old"),
        file_entry(".wh.top"),
    ]
    root = extract(tmp_path, crafted_tar(*entries))
    for path in (root / "etc" / "gone", root / "data" / "old", root / "top"):
        info = path.lstat()
        assert stat.S_ISCHR(info.st_mode)
        assert info.st_rdev == os.makedev(0, 0)
    assert not (root / "etc" / ".wh.gone").exists()


@as_root
def test_opaque_dir_gets_the_overlay_xattr_and_keeps_its_own_files(tmp_path: Path) -> None:
    entries = [
        dir_entry("opq"),
        file_entry("opq/.wh..wh..opq"),
        file_entry("opq/new"),
        file_entry("p/.wh..wh.plnk"),
    ]
    root = extract(tmp_path, crafted_tar(*entries))
    assert os.getxattr(root / "opq", "trusted.overlay.opaque") == b"y"
    assert sorted(os.listdir(root / "opq")) == ["new"]
    assert os.listdir(root / "p") == []


def test_xattrs_are_applied_but_overlay_ones_are_dropped(tmp_path: Path) -> None:
    info, data = file_entry("f")
    info.pax_headers = {"SCHILY.xattr.user.note": "hello", "SCHILY.xattr.user.overlay.redirect": "/x"}
    root = extract(tmp_path, crafted_tar((info, data)))
    assert os.getxattr(root / "f", "user.note") == b"hello"
    assert "user.overlay.redirect" not in os.listxattr(root / "f")


def test_later_entries_replace_earlier_ones(tmp_path: Path) -> None:
    entries = [
        file_entry("x", b"one"),
        dir_entry("d"),
        file_entry("d/f"),
        file_entry("x", b"two"),
        file_entry("d"),
    ]
    root = extract(tmp_path, crafted_tar(*entries))
    assert (root / "x").read_bytes() == b"two"
    assert (root / "d").is_file()


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_compressed_blobs_unpack(tmp_path: Path, compression: str) -> None:
    layer = crafted_tar(file_entry("hello.txt", b"hi\n"))
    packed = {"none": layer, "gzip": gzip.compress(layer), "zstd": zstandard.compress(layer)}[compression]
    blob, root = tmp_path / "blob", tmp_path / "root"
    blob.write_bytes(packed)
    root.mkdir()
    unpack_blob(blob, compression, root, WHAT)
    assert (root / "hello.txt").read_bytes() == b"hi\n"


def test_a_truncated_or_garbage_layer_is_one_line(tmp_path: Path) -> None:
    blob, root = tmp_path / "blob", tmp_path / "root"
    blob.write_bytes(gzip.compress(crafted_tar(file_entry("f", b"x" * 5000)))[:-300])
    root.mkdir()
    with pytest.raises(ImageError, match=r"^image test/ref layer sha256:abc: "):
        unpack_blob(blob, "gzip", root, WHAT)


def test_split_name_and_climbs_out() -> None:
    assert split_name("./a//b/./c/") == ["a", "b", "c"]
    assert split_name("./") == []
    assert not climbs_out(["a", "b"], "../../c")
    assert climbs_out(["a", "b"], "../../../c")
    assert not climbs_out([], "/usr/../bin")
    assert climbs_out([], "x/../../y")


@as_root
def test_setuid_and_file_capabilities_stay_in_a_store_only_root_reaches(tmp_path: Path) -> None:
    """Kept for inside the container's root (su, ping), never reachable from the node by others."""
    from shoal.agent.images.store import ImageStore

    store = ImageStore(tmp_path / "images")
    info, data = file_entry("bin/ping", b"\x7fELF")
    info.mode = 0o4755
    info.pax_headers = {"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00" + "\x00" * 12}
    (store.layers / "l1").mkdir()
    root = extract(store.layers / "l1", crafted_tar((info, data)))
    assert stat.S_IMODE((root / "bin" / "ping").stat().st_mode) == 0o4755
    assert os.getxattr(root / "bin" / "ping", "security.capability")
    for private in (store.root, store.layers):
        assert stat.S_IMODE(private.stat().st_mode) == 0o700

"""Per-layer unpack limits (agent/images/limits, extract): size, entries, ratio, sparse bombs.

Each hostile layer is built here in memory, written as a blob under tmp and unpacked with
``unpack_blob``: the refusal is one line naming the layer and the agent config key to change,
and a legitimate sparse file is unpacked with its holes kept.
"""

from __future__ import annotations

import gzip
import os
import time
from pathlib import Path

import pytest

from shoal.agent.images import ImageError
from shoal.agent.images.extract import unpack_blob
from shoal.agent.images.limits import Budget, Deadline, LimitExceeded, UnpackLimits, human, stream_cap
from tests.support.registry_fixtures import crafted_tar, file_entry, sparse_bomb, sparse_entry

WHAT = "image test/bomb layer sha256:" + "b" * 64


def unpack(tmp_path: Path, layer: bytes, limits: UnpackLimits | None = None) -> Path:
    blob = tmp_path / "blob"
    blob.write_bytes(layer)
    root = tmp_path / "root"
    root.mkdir()
    unpack_blob(blob, "gzip", root, WHAT, limits)
    return root


def refusal(tmp_path: Path, layer: bytes, limits: UnpackLimits | None = None) -> str:
    with pytest.raises(ImageError) as caught:
        unpack(tmp_path, layer, limits)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{WHAT}: refused: ")
    return message


def test_a_sparse_bomb_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    bomb = sparse_bomb()
    assert len(bomb) < 300
    started = time.monotonic()
    message = refusal(tmp_path, bomb)
    assert time.monotonic() - started < 5  # refused on its header, not after writing zeros
    assert "more than 20 GiB (agent config unpack_max_bytes)" in message
    assert list((tmp_path / "root").iterdir()) == []


def test_a_sparse_file_counts_by_its_apparent_size(tmp_path: Path) -> None:
    layer = gzip.compress(crafted_tar(sparse_entry("big", 3 << 30)))
    limits = UnpackLimits(max_bytes=2 << 30, max_ratio=10**12)
    assert "more than 2 GiB (agent config unpack_max_bytes)" in refusal(tmp_path, layer, limits)


def test_a_sparse_file_within_limits_keeps_its_holes(tmp_path: Path) -> None:
    layer = gzip.compress(crafted_tar(sparse_entry("disk.img", 64 << 20, b"end")))
    root = unpack(tmp_path, layer, UnpackLimits(max_ratio=10**6))
    info = os.stat(root / "disk.img")
    assert info.st_size == 64 << 20
    assert info.st_blocks * 512 <= (1 << 20) + 8192  # holes stayed holes: at most its last chunk
    with (root / "disk.img").open("rb") as handle:
        handle.seek((64 << 20) - 3)
        assert handle.read() == b"end"


def test_too_many_entries(tmp_path: Path) -> None:
    layer = gzip.compress(crafted_tar(*(file_entry(f"f{i}", b"") for i in range(11))))
    message = refusal(tmp_path, layer, UnpackLimits(max_entries=10))
    assert "more than 10 entries (agent config unpack_max_entries)" in message


def test_too_many_bytes(tmp_path: Path) -> None:
    layer = gzip.compress(crafted_tar(file_entry("a", os.urandom(4096)), file_entry("b", os.urandom(4096))))
    message = refusal(tmp_path, layer, UnpackLimits(max_bytes=6000))
    assert "more than 5.859 KiB (agent config unpack_max_bytes)" in message
    assert not (tmp_path / "root" / "b").exists()


def test_ratio_to_the_compressed_size(tmp_path: Path) -> None:
    layer = gzip.compress(crafted_tar(file_entry("zeros", bytes(8 << 20))))
    limits = UnpackLimits(max_ratio=100)
    message = refusal(tmp_path, layer, limits)
    assert f"more than 100 times its compressed size of {human(len(layer))}" in message


def test_real_layers_pass_the_defaults(tmp_path: Path) -> None:
    files = [file_entry(f"usr/lib/f{i}", os.urandom(2048)) for i in range(200)]
    root = unpack(tmp_path, gzip.compress(crafted_tar(*files)))
    assert len(list((root / "usr" / "lib").iterdir())) == 200
    (tmp_path / "tiny").mkdir()
    unpack(tmp_path / "tiny", gzip.compress(crafted_tar(file_entry("etc/hostname", b""))))


def test_a_huge_tar_stream_is_cut_off(tmp_path: Path) -> None:
    # a PAX header of 8 MiB in a layer of a few KiB: stopped by the stream cap, never read whole
    entry, data = file_entry("x", b"")
    entry.pax_headers = {"comment": "a" * (8 << 20)}
    layer = gzip.compress(crafted_tar((entry, data)))
    assert len(layer) < 64 << 10
    assert "tar stream passes" in refusal(tmp_path, layer, UnpackLimits(max_ratio=100))


def test_budget_and_stream_cap() -> None:
    budget = Budget(UnpackLimits(max_ratio=10, ratio_floor=0), compressed=100)
    budget.add(1000)
    with pytest.raises(LimitExceeded, match="10 times"):
        budget.add(1)
    assert stream_cap(UnpackLimits(), 184) < 8 << 20


def test_a_passed_deadline_stops_the_unpack(tmp_path: Path) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(gzip.compress(crafted_tar(file_entry("a"))))
    (tmp_path / "root").mkdir()
    with pytest.raises(
        ImageError, match=r"^pull x: did not finish within 0s \(agent config pull_timeout_s\)$"
    ):
        unpack_blob(blob, "gzip", tmp_path / "root", WHAT, deadline=Deadline(0, "pull x"))

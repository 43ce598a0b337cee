"""ImageStore against the real registry fixture and the real skopeo: pull, verify, overlay, GC,
and every hostile image rejected with nothing written outside."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.agent.images import ImageError, ImageStore, PulledImage, oci
from shoal.agent.images.store import sha256_file
from shoal.agent.sys import skopeo
from tests.support.registry_fixtures import BOMB, CANARY, HOSTILE

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


@pytest.fixture
def store(registry: str) -> Iterator[ImageStore]:
    root = Path(tempfile.mkdtemp(prefix="shi-store-"))
    try:
        yield ImageStore(root, insecure=[registry])
    finally:
        shutil.rmtree(root)


@pytest.fixture
def canary() -> Iterator[Path]:
    CANARY.mkdir(exist_ok=True)
    try:
        yield CANARY
    finally:
        shutil.rmtree(CANARY)


@contextlib.contextmanager
def overlay(image: PulledImage, where: Path) -> Iterator[Path]:
    """The image's layers mounted read-only as an overlay (top layer first in lowerdir)."""
    where.mkdir()
    lower = ":".join(str(path) for path in reversed(image.layer_dirs))
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower}", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)
        where.rmdir()


def blob_state(store: ImageStore) -> dict[str, tuple[int, int]]:
    blobs = store.layout / "blobs" / "sha256"
    return {path.name: (path.stat().st_ino, path.stat().st_mtime_ns) for path in blobs.iterdir()}


def layer_state(store: ImageStore) -> dict[str, int]:
    return {path.name: path.stat().st_ino for path in store.layers.iterdir()}


def raw_manifest(ref: str) -> bytes:
    """The manifest as the (plain HTTP) test registry has it, as `skopeo inspect --raw` tells it."""
    return skopeo.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", skopeo.parse_reference(ref).transport()]
    )


def last_layer_digest(ref: str) -> str:
    return oci.parse_manifest(raw_manifest(ref), ref).layers[-1].digest


def test_pull_by_tag_then_digest_fetches_nothing_new(store: ImageStore, test_images: dict[str, str]) -> None:
    ref = test_images["multilayer"]
    image = store.pull(ref)
    assert image.ref == ref
    assert len(image.layer_dirs) == 4
    assert all(path.is_dir() and path.parent == store.layers for path in image.layer_dirs)
    assert image.config["config"]["Cmd"] == ["sleep", "3600"]
    blobs, layers = blob_state(store), layer_state(store)
    assert len(blobs) == 1 + 1 + 4  # manifest, config, layers
    again = store.pull(ref)
    by_digest = store.pull(ref.rsplit(":", 1)[0] + "@" + image.digest)
    assert again.digest == by_digest.digest == image.digest
    assert again.layer_dirs == by_digest.layer_dirs == image.layer_dirs
    # layer blobs are reused, not fetched again (skopeo always re-reads the small manifest and config)
    after = blob_state(store)
    assert {d[7:]: after[d[7:]] for d in image.layer_digests} == {
        d[7:]: blobs[d[7:]] for d in image.layer_digests
    }
    assert sorted(after) == sorted(blobs)
    assert layer_state(store) == layers
    record = PulledImage.from_json((store.images / f"{image.digest[7:]}.json").read_text())
    assert set(record.refs) == {ref, by_digest.ref}


def test_a_corrupt_blob_in_the_store_is_detected_and_fetched_again(
    store: ImageStore, test_images: dict[str, str]
) -> None:
    image = store.pull(test_images["sleep"])
    blob = store.blob(image.layer_digests[-1])
    blob.write_bytes(b"corrupt" + blob.read_bytes()[7:])
    assert store.corrupt(image.blobs) == [image.layer_digests[-1]]
    store.pull(test_images["sleep"])
    assert sha256_file(blob) == image.layer_digests[-1]
    assert store.corrupt(image.blobs) == []


@pytest.mark.parametrize("name", ["multilayer", "multilayer-zstd"])
def test_overlay_of_layers_applies_whiteouts_and_opaque_dirs(
    store: ImageStore, test_images: dict[str, str], name: str
) -> None:
    image = store.pull(test_images[name])
    with overlay(image, store.root / "merged") as root:
        assert (root / "data" / "keep.txt").read_text() == "keep\n"
        assert (root / "data" / "later.txt").stat().st_mode & 0o777 == 0o600
        assert not (root / "data" / "gone.txt").exists()
        assert not (root / "bin" / "vi").exists()
        assert os.readlink(root / "bin" / "sh") == "busybox"
        assert sorted(os.listdir(root / "opq")) == ["new.txt"]
        assert (root / "etc" / "motd").read_text() == "layer two\n"
        with pytest.raises(OSError, match="Read-only file system"):
            (root / "data" / "new").write_text("x")


def test_user_image_has_its_passwd_and_group(store: ImageStore, test_images: dict[str, str]) -> None:
    image = store.pull(test_images["user"])
    assert image.config["config"]["User"] == "app"
    with overlay(image, store.root / "merged") as root:
        assert "app:x:1000:1000:app user:/home/app:/bin/sh" in (root / "etc" / "passwd").read_text()
        assert "app:x:1000:" in (root / "etc" / "group").read_text()


def test_app_images_carry_their_commands(store: ImageStore, test_images: dict[str, str]) -> None:
    assert store.pull(test_images["exit3"]).config["config"]["Cmd"] == ["sh", "-c", "echo failing; exit 3"]
    httpd = store.pull(test_images["httpd"])
    assert httpd.config["config"]["Cmd"] == ["/bin/serve"]
    assert os.access(httpd.layer_dirs[-1] / "bin" / "serve", os.X_OK)


def test_an_unpack_bomb_is_refused_in_one_line_and_leaves_nothing(
    store: ImageStore, test_images: dict[str, str], registry: str
) -> None:
    ref = test_images[BOMB]
    bomb_layer = last_layer_digest(ref)
    with pytest.raises(ImageError) as caught:
        store.pull(ref)
    message = str(caught.value)
    limit = "unpacks to more than 20 GiB (agent config unpack_max_bytes)"
    assert message == f"image {ref} layer {bomb_layer}: refused: {limit}"
    assert list(store.layers.iterdir()) == []  # no temp dir, no base layer, no partial bomb
    assert store.records() == []
    assert list((store.layout / "blobs" / "sha256").iterdir()) == []  # nor its blobs
    assert json.loads((store.layout / "index.json").read_text())["manifests"] == []


def test_the_bomb_layer_is_tiny(test_images: dict[str, str], registry: str) -> None:
    ref = test_images[BOMB]
    raw = raw_manifest(ref)
    assert oci.parse_manifest(raw, ref).layers[-1].size < 512


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_images_are_rejected_with_nothing_written_outside(
    store: ImageStore, test_images: dict[str, str], registry: str, canary: Path, name: str
) -> None:
    ref = test_images[name]
    evil_layer = last_layer_digest(ref)
    passwd_links = os.stat("/etc/passwd").st_nlink
    with pytest.raises(ImageError) as caught:
        store.pull(ref)
    message = str(caught.value)
    assert message.startswith(f"image {ref} layer {evil_layer}: entry ")
    assert "\n" not in message
    assert list(canary.iterdir()) == []
    assert os.stat("/etc/passwd").st_nlink == passwd_links
    assert list(store.layers.iterdir()) == []  # neither the evil layer nor the base it came with
    assert store.records() == []


def test_gc_removes_unused_images_layers_and_blobs(store: ImageStore, test_images: dict[str, str]) -> None:
    kept = store.pull(test_images["multilayer"])
    dropped = store.pull(test_images["sleep"])
    assert store.gc([kept.digest]) == [dropped.digest]
    assert sorted(layer_state(store)) == sorted(d[7:] for d in kept.layer_digests)
    assert sorted(blob_state(store)) == sorted(d[7:] for d in kept.blobs)
    assert all(path.is_dir() for path in kept.layer_dirs)
    assert [image.digest for image in store.records()] == [kept.digest]
    assert store.gc([test_images["multilayer"]]) == []
    assert store.gc([]) == [kept.digest]
    assert list(store.layers.iterdir()) == [] and blob_state(store) == {}
    assert store.pull(test_images["multilayer"]).digest == kept.digest


def test_a_pulled_tag_is_still_served_when_the_registry_fails(
    store: ImageStore, test_images: dict[str, str]
) -> None:
    image = store.pull(test_images["sleep"])
    offline = ImageStore(store.root)  # no insecure list: the HTTP registry now fails TLS
    assert offline.pull(test_images["sleep"]).layer_dirs == image.layer_dirs
    with pytest.raises(ImageError, match=r"^image .*/shi/exit3:latest: skopeo copy .*HTTPS client"):
        offline.pull(test_images["exit3"])


def test_pull_policy_missing_and_never_ask_no_registry_for_a_tag_held(
    store: ImageStore, test_images: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = test_images["sleep"]
    with pytest.raises(ImageError, match="is not on this node and its pull_policy is never"):
        store.pull(ref, "never")
    image = store.pull(ref, "missing")  # not here yet: fetched

    def no_registry(argv: list[str], timeout_s: float = 600) -> None:
        raise AssertionError(f"skopeo ran: {argv}")

    monkeypatch.setattr(skopeo, "run", no_registry)
    assert store.pull(ref, "missing").digest == image.digest
    assert store.pull(ref, "never").layer_dirs == image.layer_dirs
    with pytest.raises(AssertionError, match="skopeo ran"):
        store.pull(ref, "always")  # a tag is asked for again

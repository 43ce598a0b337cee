"""A multi-platform image index in the registry resolves to its linux/amd64 image."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.agent.images import ImageStore, oci
from shoal.sandbox.images import cached_build
from tests.support.registry_fixtures import CACHE, image_specs

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


@pytest.fixture
def work() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="shi-index-"))
    try:
        yield path
    finally:
        shutil.rmtree(path)


def merged_layout(work: Path, images: dict[str, str]) -> tuple[Path, dict[str, dict[str, object]]]:
    """One layout holding the blobs of several cached images; their manifest descriptors by name."""
    layout = work / "layout"
    descriptors = {}
    for name, platform in images.items():
        source = cached_build(image_specs()[name], CACHE)
        shutil.copytree(source, layout, dirs_exist_ok=True)
        entry = json.loads((source / "index.json").read_text())["manifests"][0]
        descriptors[name] = {
            "mediaType": oci.MANIFEST_TYPES[0],
            "digest": entry["digest"],
            "size": entry["size"],
        }
        descriptors[name]["platform"] = dict(zip(("os", "architecture"), platform.split("/"), strict=True))
    return layout, descriptors


def add_index(layout: Path, tag: str, manifests: list[dict[str, object]]) -> str:
    """Write an image index blob over ``manifests`` and tag it; returns its digest."""
    raw = json.dumps({"schemaVersion": 2, "mediaType": oci.INDEX_TYPES[0], "manifests": manifests}).encode()
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    (layout / "blobs" / "sha256" / digest[7:]).write_bytes(raw)
    annotations = {oci.REF_NAME: tag}
    entry = {"mediaType": oci.INDEX_TYPES[0], "digest": digest, "size": len(raw), "annotations": annotations}
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    return digest


def test_index_resolves_to_linux_amd64(work: Path, registry: str) -> None:
    layout, found = merged_layout(work, {"exit3": "linux/arm64", "sleep": "linux/amd64"})
    index_digest = add_index(layout, "multi", [found["exit3"], found["sleep"]])
    ref = f"{registry}/shi/multiarch:latest"
    push = ["skopeo", "copy", "--quiet", "--all", "--dest-tls-verify=false", f"oci:{layout}:multi"]
    subprocess.run([*push, f"docker://{ref}"], check=True)
    store = ImageStore(work / "store", insecure=[registry])
    by_tag = store.pull(ref)
    by_digest = store.pull(f"{registry}/shi/multiarch@{index_digest}")
    assert by_tag.digest == by_digest.digest == found["sleep"]["digest"]
    assert by_digest.config["config"]["Cmd"] == ["sleep", "3600"]

"""The agent's image store: pull with skopeo, verify every blob, unpack each layer once.

First stage of the agent's reconcile (images → containers): ``ImageStore.pull(ref)`` returns a
``PulledImage`` whose ``layer_dirs`` the runtime stacks as read-only overlay lowerdirs. On disk::

    ROOT/oci/           one shared OCI layout (index.json + blobs/sha256): the blob store
    ROOT/layers/HEX/    each layer unpacked once, by layer digest (overlayfs whiteouts)
    ROOT/images/HEX.json  a PulledImage record per manifest digest

Every blob (manifest, config, layers) is checked against its sha256 before use; a corrupt one is
deleted and fetched again once. A layer is unpacked into a temp dir renamed into place only when
the whole layer extracted safely, so a hostile layer leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from shoal.agent.images import oci
from shoal.agent.images.errors import ImageError
from shoal.agent.images.extract import unpack_blob
from shoal.agent.sys import skopeo
from shoal.errors import ShoalError
from shoal.model.container import PullPolicy


@dataclass(frozen=True)
class PulledImage:
    """A pulled, verified and unpacked image (layer dirs lowest first)."""

    ref: str
    digest: str
    config: dict[str, Any]
    layer_dirs: list[Path]
    layer_digests: list[str] = field(default_factory=list)
    blobs: list[str] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        """The record as JSON (paths as strings)."""
        doc = asdict(self)
        doc["layer_dirs"] = [str(path) for path in self.layer_dirs]
        return json.dumps(doc, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PulledImage:
        """A record read back from its JSON."""
        doc = json.loads(text)
        doc["layer_dirs"] = [Path(path) for path in doc["layer_dirs"]]
        return cls(**doc)


@dataclass(frozen=True)
class Resolved:
    """An image found in the layout: its manifest digest, every blob it needs, its manifest."""

    digest: str
    blobs: list[str]
    manifest: oci.Manifest


def sha256_file(path: Path) -> str:
    """``sha256:<hex>`` of a file's bytes."""
    with path.open("rb") as handle:
        return "sha256:" + hashlib.file_digest(handle, "sha256").hexdigest()


def hex_of(digest: str) -> str:
    """The hex part of a ``sha256:`` digest."""
    return digest.removeprefix("sha256:")


class ImageStore:
    """A content-addressed store of pulled images under ``root``."""

    def __init__(self, root: Path, auth_file: Path | None = None, insecure: Sequence[str] = ()) -> None:
        self.root = root
        self.auth_file = auth_file
        self.insecure = list(insecure)
        self.layout = root / "oci"
        self.layers = root / "layers"
        self.images = root / "images"
        for path in (self.layout, self.layers, self.images):
            path.mkdir(parents=True, exist_ok=True)
        # layers keep their setuid bits and file capabilities for inside the containers' roots:
        # nobody but root may reach them from the node
        for path in (root, self.layers):
            path.chmod(0o700)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Serialise pulls and GC (across threads and processes) on one lock file."""
        with (self.root / "lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def blob(self, digest: str) -> Path:
        """Where a blob lives in the shared layout."""
        return self.layout / "blobs" / "sha256" / hex_of(digest)

    def layer_dir(self, digest: str) -> Path:
        """Where a layer is unpacked."""
        return self.layers / hex_of(digest)

    def pull(self, ref: str, policy: PullPolicy = "always") -> PulledImage:
        """Pull, verify and unpack ``ref`` (tag or digest); idempotent.

        A digest is never fetched twice; a tag is asked for again unless ``policy`` is "missing"
        (use what the tag gave last time) or "never" (only ever what is here).
        """
        try:
            parsed = skopeo.parse_reference(ref)
        except ShoalError as exc:
            raise ImageError(str(exc)) from None
        with self.locked():
            cached = self.find(ref) if parsed.digest or policy != "always" else None
            if cached is not None and all(path.is_dir() for path in cached.layer_dirs):
                return cached
            if policy == "never":
                raise ImageError(f"image {ref} is not on this node and its pull_policy is never")
            return self.pull_locked(ref, parsed)

    def pull_locked(self, ref: str, parsed: skopeo.Reference) -> PulledImage:
        """Fetch with skopeo, verify (re-fetching corrupt blobs once), unpack, record."""
        name = skopeo.layout_name(ref)
        try:
            self.fetch(ref, parsed, name)
        except ImageError:
            cached = self.find(ref)  # registry unreachable: keep using what this ref gave last time
            if cached is None or not all(path.is_dir() for path in cached.layer_dirs):
                raise
            return cached
        image = self.verified(ref, parsed, name)
        self.unpack_all(ref, image.manifest)
        return self.record(ref, image)

    def verified(self, ref: str, parsed: skopeo.Reference, name: str) -> Resolved:
        """The resolved image once every blob matches its digest; corrupt ones are fetched again."""
        image = self.resolve(ref, name)
        bad = self.corrupt(image.blobs)
        if not bad:
            return image
        for digest in bad:
            self.blob(digest).unlink(missing_ok=True)
        self.fetch(ref, parsed, name)
        image = self.resolve(ref, name)
        if bad := self.corrupt(image.blobs):
            raise ImageError(f"image {ref}: blob {bad[0]} does not match its digest")
        return image

    def fetch(self, ref: str, parsed: skopeo.Reference, name: str) -> None:
        """Copy the image into the shared layout; blobs already present are reused."""
        argv = skopeo.copy_argv(parsed, self.layout, name, self.insecure, self.auth_file)
        try:
            skopeo.run(argv)
        except ShoalError as exc:
            raise ImageError(f"image {ref}: {exc}") from None

    def resolve(self, ref: str, name: str) -> Resolved:
        """The image manifest named ``name`` in the layout (through an index to linux/amd64)."""
        what = f"image {ref}"
        top = oci.layout_manifest((self.layout / "index.json").read_bytes(), name, what)
        blobs, digest = [top.digest], top.digest
        raw = self.read_verified(digest, what)
        if oci.is_index(oci.load_json(raw, what)):
            digest = oci.select_platform(raw, what).digest
            blobs.append(digest)
            raw = self.read_verified(digest, what)
        manifest = oci.parse_manifest(raw, what)
        blobs += [manifest.config.digest, *(layer.digest for layer in manifest.layers)]
        return Resolved(digest, blobs, manifest)

    def read_verified(self, digest: str, what: str) -> bytes:
        """A small blob (manifest, index) read once and checked against its digest."""
        try:
            data = self.blob(digest).read_bytes()
        except FileNotFoundError:
            raise ImageError(f"{what}: blob {digest} is missing from the store") from None
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise ImageError(f"{what}: blob {digest} does not match its digest")
        return data

    def corrupt(self, digests: Iterable[str]) -> list[str]:
        """The blobs that are missing or whose content does not hash to their digest."""
        return [d for d in digests if not self.blob(d).is_file() or sha256_file(self.blob(d)) != d]

    def unpack_all(self, ref: str, manifest: oci.Manifest) -> None:
        """Unpack each missing layer; on failure remove the layers this pull created."""
        created: list[Path] = []
        try:
            for layer in manifest.layers:
                if not self.layer_dir(layer.digest).is_dir():
                    self.unpack(ref, layer)
                    created.append(self.layer_dir(layer.digest))
        except BaseException:
            used = {d for image in self.records() for d in image.layer_digests}
            for path in created:
                if "sha256:" + path.name not in used:
                    shutil.rmtree(path, ignore_errors=True)
            raise

    def unpack(self, ref: str, layer: oci.Descriptor) -> None:
        """Unpack one layer into a temp dir, then rename it into place atomically."""
        what = f"image {ref} layer {layer.digest}"
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{hex_of(layer.digest)[:12]}-", dir=self.layers))
        try:
            tmp.chmod(0o755)
            unpack_blob(self.blob(layer.digest), oci.compression(layer, f"image {ref}"), tmp, what)
            os.rename(tmp, self.layer_dir(layer.digest))
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def record(self, ref: str, resolved: Resolved) -> PulledImage:
        """Write (or update) the image's JSON record and return it."""
        digest, config_digest = resolved.digest, resolved.manifest.config.digest
        config = oci.load_json(self.blob(config_digest).read_bytes(), f"image {ref} config")
        layers = [layer.digest for layer in resolved.manifest.layers]
        previous = self.load(digest)
        refs = sorted({ref, *(previous.refs if previous else ())})
        dirs = [self.layer_dir(d) for d in layers]
        image = PulledImage(ref, digest, config, dirs, layers, resolved.blobs, refs)
        path = self.images / f"{hex_of(digest)}.json"
        path.with_suffix(".tmp").write_text(image.to_json())
        path.with_suffix(".tmp").replace(path)
        return image

    def load(self, digest: str) -> PulledImage | None:
        """The record of one manifest digest, if pulled."""
        path = self.images / f"{hex_of(digest)}.json"
        return PulledImage.from_json(path.read_text()) if path.is_file() else None

    def records(self) -> list[PulledImage]:
        """Every image record in the store."""
        return [PulledImage.from_json(path.read_text()) for path in sorted(self.images.glob("*.json"))]

    def find(self, ref: str) -> PulledImage | None:
        """The record pulled under ``ref``, returned with ``ref`` as its reference."""
        for image in self.records():
            if ref in image.refs:
                return replace(image, ref=ref)
        return None

    def gc(self, in_use: Iterable[str]) -> list[str]:
        """Remove images (by digest or ref) not in ``in_use``, then unreferenced layers and blobs."""
        keep = set(in_use)
        with self.locked():
            removed, live = [], []
            for image in self.records():
                if image.digest in keep or keep.intersection(image.refs):
                    live.append(image)
                else:
                    (self.images / f"{hex_of(image.digest)}.json").unlink()
                    removed.append(image.digest)
            self.sweep_layers({d for image in live for d in image.layer_digests})
            self.sweep_blobs({d for image in live for d in image.blobs})
        return removed

    def sweep_layers(self, live: set[str]) -> None:
        """Delete layer dirs (and leftover temp dirs) no live image uses."""
        for path in self.layers.iterdir():
            if "sha256:" + path.name not in live:
                shutil.rmtree(path)

    def sweep_blobs(self, live: set[str]) -> None:
        """Drop dead entries from the layout's index.json, then delete unreferenced blobs."""
        index_path = self.layout / "index.json"
        if index_path.is_file():
            index = json.loads(index_path.read_text())
            index["manifests"] = [m for m in index.get("manifests", []) if m.get("digest") in live]
            index_path.with_suffix(".tmp").write_text(json.dumps(index))
            index_path.with_suffix(".tmp").replace(index_path)
        blob_dir = self.layout / "blobs" / "sha256"
        for path in blob_dir.iterdir() if blob_dir.is_dir() else ():
            if "sha256:" + path.name not in live:
                path.unlink()

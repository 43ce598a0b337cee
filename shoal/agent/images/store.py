"""The agent's image store: pull with skopeo, verify every blob, unpack each layer once.

First stage of the agent's reconcile (images → containers): ``ImageStore.pull(ref)`` returns a
``PulledImage`` whose ``layer_dirs`` the runtime stacks as read-only overlay lowerdirs. On disk::

    ROOT/oci/           one shared OCI layout (index.json + blobs/sha256): the blob store
    ROOT/layers/HEX/    each layer unpacked once, by layer digest (overlayfs whiteouts)
    ROOT/images/HEX.json  a PulledImage record per manifest digest

Every blob (manifest, config, layers) is checked against its sha256 before use; a corrupt one is
deleted and fetched again once. A layer is unpacked into a temp dir renamed into place only when
the whole layer extracted safely, so a hostile layer leaves nothing behind, nor one past the
store's ``UnpackLimits``. A pull may carry a ``Deadline``: the wait for the store's lock, skopeo and
each layer's unpack stop when it passes, with one line naming the image.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from shoal.agent.images import oci
from shoal.agent.images.auth import login_for, pull_auth_file
from shoal.agent.images.errors import ImageError
from shoal.agent.images.extract import unpack_blob
from shoal.agent.images.limits import Deadline, UnpackLimits
from shoal.agent.sys import skopeo
from shoal.errors import ShoalError
from shoal.model.container import PullPolicy
from shoal.model.registry import RegistryAuth, registry_host

_UNAUTHORIZED = ("unauthorized", "authentication required", "denied")


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

    def __init__(
        self,
        root: Path,
        auth_file: Path | None = None,
        insecure: Sequence[str] = (),
        auth_dir: Path | None = None,
        limits: UnpackLimits | None = None,
    ) -> None:
        self.root = root
        self.limits = limits or UnpackLimits()
        self.auth_file = auth_file
        self.auth_dir = auth_dir  # where per-pull auth files live (tmpfs); None: the system temp dir
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
    def locked(self, deadline: Deadline | None = None) -> Iterator[None]:
        """Serialise pulls and GC (across threads and processes) on one lock file; with a
        ``deadline`` the wait for it ends when the deadline passes."""
        with (self.root / "lock").open("a") as handle:
            if deadline is None or deadline.at is None:
                fcntl.flock(handle, fcntl.LOCK_EX)
            else:
                wait_for_lock(handle.fileno(), deadline)
            yield

    def blob(self, digest: str) -> Path:
        """Where a blob lives in the shared layout."""
        return self.layout / "blobs" / "sha256" / hex_of(digest)

    def layer_dir(self, digest: str) -> Path:
        """Where a layer is unpacked."""
        return self.layers / hex_of(digest)

    def pull(
        self,
        ref: str,
        policy: PullPolicy = "always",
        logins: Sequence[RegistryAuth] = (),
        deadline: Deadline | None = None,
    ) -> PulledImage:
        """Pull, verify and unpack ``ref`` (tag or digest) before ``deadline``; idempotent.

        A digest is never fetched twice; a tag is asked for again unless ``policy`` is "missing"
        (use what the tag gave last time) or "never" (only ever what is here). The login in
        ``logins`` for the image's registry, if any, is used for this pull only.
        """
        deadline = deadline or Deadline(None)
        try:
            parsed = skopeo.parse_reference(ref)
        except ShoalError as exc:
            raise ImageError(str(exc)) from None
        with self.locked(deadline):
            cached = self.find(ref) if parsed.digest or policy != "always" else None
            if cached is not None and all(path.is_dir() for path in cached.layer_dirs):
                return cached
            if policy == "never":
                raise ImageError(f"image {ref} is not on this node and its pull_policy is never")
            login = login_for(registry_host(ref), logins)
            if login is not None:  # keyed as the reference spells its registry, which skopeo looks up
                login = login.model_copy(update={"host": parsed.registry})
            return self.pull_locked(ref, parsed, deadline, login)

    def pull_locked(
        self, ref: str, parsed: skopeo.Reference, deadline: Deadline, login: RegistryAuth | None = None
    ) -> PulledImage:
        """Fetch with skopeo, verify (re-fetching corrupt blobs once), unpack, record."""
        name = skopeo.layout_name(ref)
        try:
            self.fetch(ref, parsed, name, deadline, login)
        except ImageError:
            cached = self.find(ref)  # registry unreachable: keep using what this ref gave last time
            if cached is None or not all(path.is_dir() for path in cached.layer_dirs):
                raise
            return cached
        image = self.verified(ref, parsed, name, deadline, login)
        try:
            self.unpack_all(ref, image.manifest, deadline)
        except ImageError:  # a refused image leaves nothing behind: no layer dir, no blob
            self.sweep_blobs({digest for record in self.records() for digest in record.blobs})
            raise
        return self.record(ref, image)

    def verified(
        self,
        ref: str,
        parsed: skopeo.Reference,
        name: str,
        deadline: Deadline,
        login: RegistryAuth | None = None,
    ) -> Resolved:
        """The resolved image once every blob matches its digest; corrupt ones are fetched again."""
        image = self.resolve(ref, name)
        bad = self.corrupt(image.blobs)
        if not bad:
            return image
        for digest in bad:
            self.blob(digest).unlink(missing_ok=True)
        self.fetch(ref, parsed, name, deadline, login)
        image = self.resolve(ref, name)
        if bad := self.corrupt(image.blobs):
            raise ImageError(f"image {ref}: blob {bad[0]} does not match its digest")
        return image

    def fetch(
        self,
        ref: str,
        parsed: skopeo.Reference,
        name: str,
        deadline: Deadline,
        login: RegistryAuth | None = None,
    ) -> None:
        """Copy the image into the shared layout; blobs already present are reused."""
        with pull_auth_file(login, self.auth_file, self.auth_dir) as auth_file:
            argv = skopeo.copy_argv(parsed, self.layout, name, self.insecure, auth_file)
            remaining = deadline.remaining()
            try:
                skopeo.run(argv, 600 if remaining is None else max(remaining, 0.1))
            except ShoalError as exc:
                deadline.check()  # skopeo was stopped by the pull's deadline: say that
                raise ImageError(f"image {ref}: {exc}{self.login_hint(parsed, login, str(exc))}") from None

    def login_hint(self, parsed: skopeo.Reference, login: RegistryAuth | None, error: str) -> str:
        """What to do about a refused anonymous pull (empty when a login was used or none applies)."""
        if login is not None or self.auth_file is not None:
            return ""
        if not any(word in error.lower() for word in _UNAUTHORIZED):
            return ""
        return f" (no login for {parsed.registry}: shoal registry login {parsed.registry})"

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

    def unpack_all(self, ref: str, manifest: oci.Manifest, deadline: Deadline | None = None) -> None:
        """Unpack each missing layer; on failure remove the layers this pull created."""
        created: list[Path] = []
        try:
            for layer in manifest.layers:
                if not self.layer_dir(layer.digest).is_dir():
                    self.unpack(ref, layer, deadline)
                    created.append(self.layer_dir(layer.digest))
        except BaseException:
            used = {d for image in self.records() for d in image.layer_digests}
            for path in created:
                if "sha256:" + path.name not in used:
                    shutil.rmtree(path, ignore_errors=True)
            raise

    def unpack(self, ref: str, layer: oci.Descriptor, deadline: Deadline | None = None) -> None:
        """Unpack one layer into a temp dir, then rename it into place atomically."""
        what = f"image {ref} layer {layer.digest}"
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{hex_of(layer.digest)[:12]}-", dir=self.layers))
        try:
            tmp.chmod(0o755)
            compression = oci.compression(layer, f"image {ref}")
            unpack_blob(self.blob(layer.digest), compression, tmp, what, self.limits, deadline=deadline)
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


def wait_for_lock(fd: int, deadline: Deadline) -> None:
    """Take an exclusive flock on ``fd``, polling, until ``deadline`` passes (then ImageError)."""
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            deadline.check()
            time.sleep(0.05)

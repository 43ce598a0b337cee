"""Pure parsers of OCI (and Docker v2) image JSON: layout index, image index, manifest.

The store reads these from its shared OCI layout after skopeo copied the image there; nothing
here touches the disk, so every rule is unit-tested on literal documents.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from shoal.agent.images.errors import ImageError

REF_NAME = "org.opencontainers.image.ref.name"
INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
COMPRESSION = {
    "application/vnd.oci.image.layer.v1.tar": "none",
    "application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd": "zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar": "none",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "zstd",
    "application/vnd.docker.image.rootfs.diff.tar": "none",
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
    "application/vnd.docker.image.rootfs.diff.tar.zstd": "zstd",
}


@dataclass(frozen=True)
class Descriptor:
    """A content descriptor: media type, digest, size (and the platform in an index)."""

    media_type: str
    digest: str
    size: int
    platform: tuple[str, str] | None = None


@dataclass(frozen=True)
class Manifest:
    """An image manifest: its config descriptor and layers, lowest first."""

    config: Descriptor
    layers: tuple[Descriptor, ...]


def load_json(raw: bytes, what: str) -> dict[str, object]:
    """A JSON object or an ``ImageError`` naming ``what`` was not one."""
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise ImageError(f"{what}: not valid JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise ImageError(f"{what}: not a JSON object")
    return doc


def descriptor(entry: object, what: str) -> Descriptor:
    """Parse one descriptor object, checking the digest syntax."""
    if not isinstance(entry, dict):
        raise ImageError(f"{what}: descriptor is not an object")
    digest, size = entry.get("digest"), entry.get("size", 0)
    if not isinstance(digest, str) or not is_sha256(digest) or not isinstance(size, int):
        raise ImageError(f"{what}: bad descriptor digest {digest!r}")
    platform = entry.get("platform")
    plat = (
        (str(platform.get("os")), str(platform.get("architecture"))) if isinstance(platform, dict) else None
    )
    return Descriptor(str(entry.get("mediaType", "")), digest, size, plat)


def is_sha256(digest: str) -> bool:
    """Whether ``digest`` is ``sha256:`` and 64 lowercase hex digits."""
    hexpart = digest.removeprefix("sha256:")
    return (
        digest.startswith("sha256:") and len(hexpart) == 64 and all(c in "0123456789abcdef" for c in hexpart)
    )


def descriptors(doc: dict[str, object], key: str, what: str) -> list[Descriptor]:
    """The descriptor list under ``key`` (``manifests`` or ``layers``)."""
    entries = doc.get(key, [])
    if not isinstance(entries, list):
        raise ImageError(f"{what}: {key} is not a list")
    return [descriptor(entry, what) for entry in entries]


def is_index(doc: dict[str, object]) -> bool:
    """Whether a document is an image index / manifest list rather than a manifest."""
    return doc.get("mediaType") in INDEX_TYPES or ("manifests" in doc and "layers" not in doc)


def parse_manifest(raw: bytes, what: str) -> Manifest:
    """Parse an image manifest; an index here is an error (resolve it first)."""
    doc = load_json(raw, what)
    if is_index(doc):
        raise ImageError(f"{what}: expected an image manifest, found an index")
    return Manifest(descriptor(doc.get("config"), what), tuple(descriptors(doc, "layers", what)))


def select_platform(raw: bytes, what: str, os: str = "linux", arch: str = "amd64") -> Descriptor:
    """The manifest for ``os/arch`` in an image index."""
    for entry in descriptors(load_json(raw, what), "manifests", what):
        if entry.platform == (os, arch):
            return entry
    raise ImageError(f"{what}: index has no {os}/{arch} manifest")


def layout_manifest(index_raw: bytes, name: str, what: str) -> Descriptor:
    """The descriptor tagged ``name`` in an OCI layout's index.json."""
    entries = load_json(index_raw, what).get("manifests")
    for entry in entries if isinstance(entries, list) else []:
        annotations = entry.get("annotations") if isinstance(entry, dict) else None
        if isinstance(annotations, dict) and annotations.get(REF_NAME) == name:
            return descriptor(entry, what)
    raise ImageError(f"{what}: no manifest named {name} in the store's index.json")


def compression(layer: Descriptor, what: str) -> str:
    """``none``, ``gzip`` or ``zstd`` for a layer's media type."""
    try:
        return COMPRESSION[layer.media_type]
    except KeyError:
        raise ImageError(
            f"{what}: layer {layer.digest}: unsupported media type {layer.media_type!r}"
        ) from None

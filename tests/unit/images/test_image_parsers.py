"""Pure parsers: image references, skopeo argv and errors, OCI layout/index/manifest JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shoal.agent.images import ImageError, oci
from shoal.agent.sys import skopeo

DATA = Path(__file__).parent / "data"
DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("busybox", ("docker.io", "library/busybox", "latest", None)),
        ("user/app:1.2", ("docker.io", "user/app", "1.2", None)),
        ("127.0.0.1:5000/shi/multi:latest", ("127.0.0.1:5000", "shi/multi", "latest", None)),
        ("localhost/a/b", ("localhost", "a/b", "latest", None)),
        (f"reg.example:443/x@{DIGEST}", ("reg.example:443", "x", None, DIGEST)),
        (f"reg.example/x:v1@{DIGEST}", ("reg.example", "x", "v1", DIGEST)),
    ],
)
def test_parse_reference(ref: str, expected: tuple[str, str, str | None, str | None]) -> None:
    parsed = skopeo.parse_reference(ref)
    assert (parsed.registry, parsed.repository, parsed.tag, parsed.digest) == expected


@pytest.mark.parametrize("ref", ["UPPER/case", "x@sha256:short", "reg:5000/", "a//b", "-bad"])
def test_bad_references_are_one_line_errors(ref: str) -> None:
    with pytest.raises(skopeo.SkopeoError, match=r"^image "):
        skopeo.parse_reference(ref)


def test_copy_argv_uses_insecure_list_and_authfile() -> None:
    ref = skopeo.parse_reference(f"127.0.0.1:5000/shi/x@{DIGEST}")
    argv = skopeo.copy_argv(ref, Path("/s/oci"), "ref-1", ["127.0.0.1:5000"], Path("/etc/auth.json"))
    assert argv == [
        "skopeo", "copy", "--quiet", "--src-tls-verify=false", "--src-authfile", "/etc/auth.json",
        f"docker://127.0.0.1:5000/shi/x@{DIGEST}", "oci:/s/oci:ref-1",
    ]  # fmt: skip
    secure = skopeo.copy_argv(skopeo.parse_reference("r.io/x:1"), Path("/o"), "n", ["other:1"], None)
    assert secure == ["skopeo", "copy", "--quiet", "docker://r.io/x:1", "oci:/o:n"]


def test_last_error_of_captured_skopeo_failures() -> None:
    missing = skopeo.last_error((DATA / "copy_missing_stderr.txt").read_bytes())
    assert missing.endswith("manifest unknown: manifest unknown")
    assert missing.startswith("initializing source docker://127.0.0.1:45126/shi/missing:latest")
    tls = skopeo.last_error((DATA / "copy_tls_stderr.txt").read_bytes())
    assert tls.endswith('Get "https://127.0.0.1:45126/v2/": http: server gave HTTP response to HTTPS client')
    assert skopeo.last_error(b"") == "failed without output"


def test_parse_manifest_of_captured_inspect_output() -> None:
    raw = (DATA / "inspect_raw_manifest.json").read_bytes()
    manifest = oci.parse_manifest(raw, "image x")
    assert len(manifest.layers) == 2
    assert {oci.compression(layer, "x") for layer in manifest.layers} == {"gzip"}
    assert manifest.config.media_type == "application/vnd.oci.image.config.v1+json"


def test_layout_manifest_of_captured_index() -> None:
    index = (DATA / "layout_index.json").read_bytes()
    found = oci.layout_manifest(index, "ref-abc", "image x")
    assert found.digest == "sha256:6318770a8c9a369db91b30b329804bb2bb0a13b6855d2cb2f43b85a775ad9ead"
    with pytest.raises(ImageError, match="no manifest named ref-other"):
        oci.layout_manifest(index, "ref-other", "image x")


def index_doc(*platforms: tuple[str, str]) -> bytes:
    manifests = [
        {"mediaType": oci.MANIFEST_TYPES[0], "digest": "sha256:" + f"{i:02x}" * 32, "size": 1,
         "platform": {"os": os_, "architecture": arch}}
        for i, (os_, arch) in enumerate(platforms)
    ]  # fmt: skip
    return json.dumps({"schemaVersion": 2, "mediaType": oci.INDEX_TYPES[0], "manifests": manifests}).encode()


def test_select_platform_from_an_index() -> None:
    raw = index_doc(("linux", "arm64"), ("linux", "amd64"))
    assert oci.is_index(json.loads(raw))
    assert oci.select_platform(raw, "image x").digest == "sha256:" + "01" * 32
    with pytest.raises(ImageError, match="no linux/amd64 manifest"):
        oci.select_platform(index_doc(("linux", "arm64")), "image x")
    with pytest.raises(ImageError, match="found an index"):
        oci.parse_manifest(raw, "image x")


@pytest.mark.parametrize(
    "doc",
    [b"[]", b"{not json", b'{"config": {"digest": "md5:00", "size": 1}, "layers": []}',
     b'{"config": {"digest": "sha256:' + b"0" * 64 + b'", "size": 1}, "layers": {}}'],
)  # fmt: skip
def test_bad_manifests_are_image_errors(doc: bytes) -> None:
    with pytest.raises(ImageError, match=r"^image x: "):
        oci.parse_manifest(doc, "image x")


def test_unknown_layer_media_type() -> None:
    layer = oci.Descriptor("application/x-weird", DIGEST, 1)
    with pytest.raises(ImageError, match="unsupported media type 'application/x-weird'"):
        oci.compression(layer, "image x")

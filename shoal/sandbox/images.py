"""Build OCI images offline from busybox-static with umoci, and push them with skopeo.

Used by the test fixtures and by the sandbox. An image is a busybox base layer (``umoci
unpack``/``repack``) followed by "layer steps" (files to add, paths to delete as whiteouts, dirs to
make opaque) and raw tar layers appended verbatim with ``umoci raw add-layer`` (crafted, possibly
hostile, archives), then ``umoci config`` for cmd, entrypoint, env, workdir and user (Docker's
Healthcheck, which umoci cannot set, is written into the config blob). Builds are cached by
content, so a second build of the same spec is a copy-free lookup.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

BUSYBOX = Path("/bin/busybox")
BUILDER_VERSION = "1"
LAYER_MTIME = 1_700_000_000
BASE_USERS = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
BASE_GROUP = "root:x:0:\nnogroup:x:65534:\n"


@dataclass(frozen=True)
class LayerStep:
    """One layer: files to add (path → content), paths to delete, dirs to make opaque."""

    files: Mapping[str, bytes] = field(default_factory=dict)
    modes: Mapping[str, int] = field(default_factory=dict)
    symlinks: Mapping[str, str] = field(default_factory=dict)
    delete: Sequence[str] = ()
    opaque: Sequence[str] = ()


@dataclass(frozen=True)
class ImageSpec:
    """An image to build: its layer steps, raw tar layers and config."""

    layers: Sequence[LayerStep] = ()
    raw_layers: Sequence[bytes] = ()
    cmd: Sequence[str] | None = None
    entrypoint: Sequence[str] | None = None
    env: Sequence[str] = ()
    workdir: str | None = None
    user: str | None = None
    # Docker's ``config.Healthcheck`` (Test, Interval/Timeout/StartPeriod in ns, Retries): a field
    # the OCI spec does not define, so umoci cannot set it; written into the config blob directly.
    healthcheck: Mapping[str, object] | None = None


def fingerprint(spec: ImageSpec) -> str:
    """A content hash of the spec, the busybox binary and the builder version."""
    digest = hashlib.sha256(BUILDER_VERSION.encode())
    digest.update(hashlib.sha256(BUSYBOX.read_bytes()).digest())
    digest.update(json.dumps(asdict(spec), default=_jsonable, sort_keys=True).encode())
    return digest.hexdigest()


def _jsonable(value: object) -> object:
    if isinstance(value, bytes):
        return hashlib.sha256(value).hexdigest()
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(type(value).__name__)


def cached_build(spec: ImageSpec, cache_root: Path, tag: str = "latest") -> Path:
    """The OCI layout holding ``spec`` as ``tag``, built once per content under ``cache_root``."""
    layout = cache_root / f"{fingerprint(spec)[:32]}-{tag}"
    if (layout / "index.json").exists():
        return layout
    cache_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=cache_root))
    try:
        build_image(spec, tmp / "layout", tag)
        try:
            (tmp / "layout").rename(layout)
        except OSError:
            if not (layout / "index.json").exists():
                raise  # else a concurrent build of the same content won the race: use its layout
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return layout


def build_image(spec: ImageSpec, layout: Path, tag: str = "latest") -> None:
    """Build ``spec`` into a new OCI layout at ``layout`` under ``tag``."""
    image = f"{layout}:{tag}"
    _run(["umoci", "init", "--layout", str(layout)])
    _run(["umoci", "new", "--image", image])
    with tempfile.TemporaryDirectory(prefix="shi-bundle-") as tmp:
        bundle = Path(tmp) / "bundle"
        _run(["umoci", "unpack", "--image", image, str(bundle)])
        write_busybox_rootfs(bundle / "rootfs")
        _run(["umoci", "repack", "--image", image, str(bundle)])
        for index, layer in enumerate([*map(layer_tar, spec.layers), *spec.raw_layers]):
            tar_path = Path(tmp) / f"layer{index}.tar"
            tar_path.write_bytes(layer)
            _run(["umoci", "raw", "add-layer", "--image", image, str(tar_path)])
    _run(["umoci", "config", "--image", image, *config_flags(spec)])
    if spec.healthcheck is not None:
        set_config_field(layout, tag, "Healthcheck", dict(spec.healthcheck))
    _run(["umoci", "gc", "--layout", str(layout)])


def set_config_field(layout: Path, tag: str, key: str, value: object) -> None:
    """Set ``config.<key>`` in the image ``tag`` of ``layout``: a new config blob, a new manifest
    pointing at it, and the index entry repointed (the old blobs are left for ``umoci gc``)."""
    index = json.loads((layout / "index.json").read_text())
    entry = next(m for m in index["manifests"] if m.get("annotations", {}).get(_REF_NAME) == tag)
    manifest = json.loads(_blob(layout, entry["digest"]).read_bytes())
    config = json.loads(_blob(layout, manifest["config"]["digest"]).read_bytes())
    config.setdefault("config", {})[key] = value
    manifest["config"].update(_write_blob(layout, json.dumps(config).encode()))
    entry.update(_write_blob(layout, json.dumps(manifest).encode()))
    (layout / "index.json").write_text(json.dumps(index))


_REF_NAME = "org.opencontainers.image.ref.name"


def _blob(layout: Path, digest: str) -> Path:
    algorithm, hexdigest = digest.split(":", 1)
    return layout / "blobs" / algorithm / hexdigest


def _write_blob(layout: Path, data: bytes) -> dict[str, object]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    _blob(layout, digest).write_bytes(data)
    return {"digest": digest, "size": len(data)}


def config_flags(spec: ImageSpec) -> list[str]:
    """``umoci config`` flags for the spec's cmd, entrypoint, env, workdir and user."""
    flags = ["--os", "linux", "--architecture", "amd64", "--clear=config.cmd"]
    flags += [f"--config.cmd={arg}" for arg in spec.cmd or ()]
    if spec.entrypoint is not None:
        flags += ["--clear=config.entrypoint"]
        flags += [f"--config.entrypoint={arg}" for arg in spec.entrypoint]
    flags += [f"--config.env={env}" for env in spec.env]
    if spec.workdir is not None:
        flags.append(f"--config.workingdir={spec.workdir}")
    if spec.user is not None:
        flags.append(f"--config.user={spec.user}")
    return flags


def write_busybox_rootfs(rootfs: Path) -> None:
    """A minimal root: busybox with every applet linked in /bin, /etc/passwd, /etc/group."""
    for name, mode in (("bin", 0o755), ("etc", 0o755), ("tmp", 0o1777), ("root", 0o700), ("www", 0o755)):
        (rootfs / name).mkdir(parents=True, exist_ok=True)
        (rootfs / name).chmod(mode)
    for name in ("proc", "sys", "dev", "home", "var"):
        (rootfs / name).mkdir(exist_ok=True)
    shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
    for applet in busybox_applets():
        if applet != "busybox":
            (rootfs / "bin" / applet).symlink_to("busybox")
    (rootfs / "etc" / "passwd").write_text(BASE_USERS)
    (rootfs / "etc" / "group").write_text(BASE_GROUP)
    (rootfs / "etc" / "hostname").write_text("busybox\n")


def busybox_applets() -> list[str]:
    """The applet names busybox-static provides."""
    out = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def layer_tar(step: LayerStep) -> bytes:
    """An uncompressed layer tar for a step: parent dirs, files, symlinks and OCI whiteouts."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        paths = [*step.files, *step.symlinks, *step.delete, *(f"{d}/x" for d in step.opaque)]
        for parent in _parents(paths):
            tar.addfile(tar_entry(parent, tarfile.DIRTYPE, mode=0o755))
        for path in step.opaque:
            tar.addfile(tar_entry(f"{path}/.wh..wh..opq"), io.BytesIO(b""))
        for path in step.delete:
            head, _, name = path.rpartition("/")
            tar.addfile(tar_entry(f"{head}/.wh.{name}" if head else f".wh.{name}"), io.BytesIO(b""))
        for path, data in step.files.items():
            tar.addfile(tar_entry(path, size=len(data), mode=step.modes.get(path, 0o644)), io.BytesIO(data))
        for path, target in step.symlinks.items():
            tar.addfile(tar_entry(path, tarfile.SYMTYPE, linkname=target, mode=0o777))
    return buf.getvalue()


def _parents(paths: Sequence[str]) -> list[str]:
    """Every parent directory of ``paths``, shallowest first, each once."""
    parents = {
        "/".join(p.strip("/").split("/")[:i]) for p in paths for i in range(1, p.strip("/").count("/") + 1)
    }
    return sorted(parents, key=lambda p: (p.count("/"), p))


def tar_entry(
    name: str, kind: bytes = tarfile.REGTYPE, *, size: int = 0, mode: int = 0o644, linkname: str = ""
) -> tarfile.TarInfo:
    """A tar header owned by root with a fixed mtime (so builds are reproducible)."""
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mode, info.linkname = kind, size, mode, linkname
    info.mtime, info.uid, info.gid, info.uname, info.gname = LAYER_MTIME, 0, 0, "root", "root"
    return info


def push(layout: Path, tag: str, dest: str, compress: str | None = None, timeout_s: float = 120) -> None:
    """Push ``oci:LAYOUT:TAG`` to ``docker://DEST`` (an insecure HTTP registry), optionally
    recompressing the layers (``zstd``)."""
    recompress = ["--dest-compress-format", compress] if compress else []
    argv = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false", *recompress]
    _run([*argv, f"oci:{layout}:{tag}", f"docker://{dest}"], timeout_s)


def example_app_spec(port: int = 8080) -> ImageSpec:
    """A busybox httpd web server whose page names the container's hostname; it logs a line when
    it starts and one per response (`-v`), so `shoal service logs` has something to show."""
    serve = (
        "#!/bin/sh\n"
        "mkdir -p /www\n"
        'echo "<h1>hello from $(hostname)</h1>" > /www/index.html\n'
        "echo ok > /www/health\n"
        f'echo "hello: $(hostname) serving on port ${{PORT:-{port}}}"\n'
        f'exec httpd -f -v -p "${{PORT:-{port}}}" -h /www 2>&1\n'
    )
    step = LayerStep(files={"bin/serve": serve.encode()}, modes={"bin/serve": 0o755})
    return ImageSpec(layers=(step,), cmd=("/bin/serve",), env=(f"PORT={port}", "PATH=/bin"))


def _run(argv: list[str], timeout_s: float = 120) -> None:
    """Run a build tool; a failure raises with its stderr's last line."""
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout_s)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{argv[0]} {argv[1]} failed: {tail}")

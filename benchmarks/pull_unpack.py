"""Pull+unpack of a multi-layer image from a local registry: shoal's ImageStore against
``skopeo copy`` + ``umoci unpack`` of the same image, each into an empty store, same run.

Prints JSON: medians over ``--runs`` interleaved runs and their ratio (target ≤ 1.2).
Run as root: ``.venv/bin/python benchmarks/pull_unpack.py [--runs 7]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from shoal.agent.images import ImageStore
from shoal.sandbox.images import ImageSpec, LayerStep, cached_build, push
from shoal.sandbox.registry import start_registry

CACHE = Path(tempfile.gettempdir()) / "shi-image-cache"


def bench_spec(layers: int = 5, files: int = 300) -> ImageSpec:
    """Busybox plus ``layers`` layers of ``files`` files each: text-like and random data mixed."""
    rng = random.Random(42)
    steps = []
    for layer in range(layers):
        content = {}
        for index in range(files):
            size = rng.choice((512, 4096, 16384, 65536))
            data = (
                rng.randbytes(size // 2) + bytes(size // 2)
                if index % 2
                else (b"line %d\n" % index) * (size // 8)
            )
            content[f"opt/l{layer}/d{index % 17}/f{index}.bin"] = data
        deleted = (f"opt/l{layer - 1}/d0/f0.bin",) if layer else ()
        steps.append(LayerStep(files=content, delete=deleted))
    return ImageSpec(layers=tuple(steps), cmd=("sleep", "3600"))


def free_port() -> int:
    """An ephemeral TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def timed(action: Callable[[Path], None]) -> float:
    """Seconds taken by ``action`` on a fresh empty dir (removed afterwards)."""
    work = Path(tempfile.mkdtemp(prefix="shi-bench-"))
    try:
        started = time.perf_counter()
        action(work)
        return time.perf_counter() - started
    finally:
        shutil.rmtree(work)


def shoal_pull(ref: str, registry: str) -> Callable[[Path], None]:
    """ImageStore pull (skopeo copy + verify + safe unpack of each layer)."""

    def run(work: Path) -> None:
        ImageStore(work, insecure=[registry]).pull(ref)

    return run


def baseline_pull(ref: str) -> Callable[[Path], None]:
    """``skopeo copy docker://… oci:…`` then ``umoci unpack``."""

    def run(work: Path) -> None:
        copy = [
            "skopeo",
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            f"docker://{ref}",
            f"oci:{work}/oci:img",
        ]
        subprocess.run(copy, check=True)
        subprocess.run(["umoci", "unpack", "--image", f"{work}/oci:img", f"{work}/bundle"], check=True)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    runs = max(5, parser.parse_args().runs)
    root = Path(tempfile.mkdtemp(prefix="shi-bench-registry-"))
    registry = start_registry(root, f"127.0.0.1:{free_port()}")
    try:
        ref = f"{registry.addr}/shi/bench:latest"
        layout = cached_build(bench_spec(), CACHE)
        push(layout, "latest", ref)
        shoal_times, baseline_times = [], []
        timed(shoal_pull(ref, registry.addr))  # warm the page cache and the registry once
        for _ in range(runs):
            shoal_times.append(timed(shoal_pull(ref, registry.addr)))
            baseline_times.append(timed(baseline_pull(ref)))
        report(layout, runs, shoal_times, baseline_times)
    finally:
        registry.stop()
        shutil.rmtree(root)


def report(layout: Path, runs: int, shoal_times: list[float], baseline_times: list[float]) -> None:
    """Print the JSON result."""
    blobs = layout / "blobs" / "sha256"
    shoal_s, baseline_s = statistics.median(shoal_times), statistics.median(baseline_times)
    result = {
        "benchmark": "pull_unpack",
        "image": {
            "layers": 1 + len(bench_spec().layers),
            "compressed_bytes": sum(p.stat().st_size for p in blobs.iterdir()),
        },
        "runs": runs,
        "shoal_median_s": round(shoal_s, 4),
        "baseline_skopeo_umoci_median_s": round(baseline_s, 4),
        "ratio": round(shoal_s / baseline_s, 3),
        "target_ratio": 1.2,
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Start latency of a container whose image is on disk: shoal vs raw runc vs podman (root).

shoal: Runtime.create_and_start (overlay mount, config.json, conmon + runc create, runc start).
runc:  ``runc run -d`` of a bundle with the same config.json (its root mounted once beforehand).
podman: ``podman run -d --rootfs DIR`` of the same rootfs (private storage, no network).
Each round runs the three back to back; every container is removed after it is timed.
Prints JSON: p50/p95 in milliseconds for each, and shoal's ratios.
Usage (root): ``.venv/bin/python benchmarks/start_latency.py [RUNS]``.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shoal.agent.render import oci
from shoal.agent.runtime import Runtime, RuntimeConfig
from shoal.model.container import ContainerSpec
from tests.integration.runtime.conftest import build_rootfs, remove_cgroup

IMAGE = {"config": {"Cmd": ["sleep", "300"]}}
PODMAN_ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]


def timed(fn: object) -> float:
    t = time.perf_counter()
    fn()  # type: ignore[operator]
    return (time.perf_counter() - t) * 1000


def stats(ms: list[float]) -> dict[str, float]:
    q = statistics.quantiles(ms, n=20, method="inclusive")
    return {"p50_ms": round(statistics.median(ms), 2), "p95_ms": round(q[18], 2), "runs": len(ms)}


class Bench:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.rootfs = build_rootfs(base / "image")
        self.parent = f"/shc-bench-{int(time.time())}"
        self.rt = Runtime(
            RuntimeConfig(
                state_dir=base / "state", bundles_dir=base / "bundles", logs_dir=base / "logs",
                volumes_dir=base / "volumes", cgroup_parent=self.parent,
            )
        )  # fmt: skip
        self.raw_root = base / "raw-runc"
        self.raw_bundle = base / "raw-bundle"
        store = base / "podman"
        self.podman = ["podman", "--root", str(store / "root"), "--runroot", str(store / "run"),
                       "--cgroup-manager", "cgroupfs", "--events-backend", "none"]  # fmt: skip

    def prepare_raw_bundle(self) -> None:
        self.raw_bundle.mkdir()
        (self.raw_bundle / "rootfs").mkdir()
        subprocess.run(["mount", "--bind", str(self.rootfs), str(self.raw_bundle / "rootfs")], check=True)
        spec = ContainerSpec(id="raw", image="bench")
        inputs = oci.BundleInputs(rootfs=str(self.raw_bundle / "rootfs"), cgroups_path=f"{self.parent}/raw")
        doc = oci.render_config(spec, IMAGE, inputs)
        (self.raw_bundle / "config.json").write_text(json.dumps(doc))

    def shoal(self, i: int) -> float:
        spec = ContainerSpec(id=f"shc-s{i}", image="bench")
        ms = timed(lambda: self.rt.create_and_start(spec, IMAGE, [self.rootfs]))
        self.rt.delete(spec.id)
        return ms

    def raw(self, i: int) -> float:
        cid = f"shc-r{i}"
        config = json.loads((self.raw_bundle / "config.json").read_text())
        config["linux"]["cgroupsPath"] = f"{self.parent}/{cid}"
        (self.raw_bundle / "config.json").write_text(json.dumps(config))
        argv = ["runc", "--root", str(self.raw_root), "run", "-d", "--bundle", str(self.raw_bundle), cid]
        quiet = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        ms = timed(lambda: subprocess.run(argv, check=True, **quiet))  # type: ignore[call-overload]
        delete = ["runc", "--root", str(self.raw_root), "delete", "--force", cid]
        subprocess.run(delete, check=True, capture_output=True)
        return ms

    def podman_run(self, i: int) -> float:
        name = f"shc-p{i}"
        argv = [*self.podman, "run", "-d", "--network", "none", *PODMAN_ULIMITS, "--name", name,
                "--cgroup-parent", f"{self.parent}/podman", "--rootfs", str(self.rootfs),
                "sleep", "300"]  # fmt: skip
        ms = timed(lambda: subprocess.run(argv, check=True, stdout=subprocess.DEVNULL))
        subprocess.run([*self.podman, "rm", "-f", "-t", "0", name], check=True, stdout=subprocess.DEVNULL)
        return ms

    def cleanup(self) -> None:
        for c in self.rt.list():
            with contextlib.suppress(Exception):
                self.rt.delete(c.id)
        raw = ["runc", "--root", str(self.raw_root)]
        listed = subprocess.run([*raw, "list", "-q"], check=False, capture_output=True, text=True)
        for cid in listed.stdout.split():
            subprocess.run([*raw, "delete", "--force", cid], check=False, capture_output=True)
        subprocess.run([*self.podman, "rm", "-a", "-f", "-t", "0"], check=False, capture_output=True)
        subprocess.run(["umount", str(self.raw_bundle / "rootfs")], check=False, capture_output=True)
        remove_cgroup(self.parent)


def main(runs: int) -> dict[str, object]:
    base = Path(tempfile.mkdtemp(prefix="shc-bench-"))
    bench = Bench(base)
    try:
        bench.prepare_raw_bundle()
        bench.shoal(-1), bench.raw(-1), bench.podman_run(-1)  # warm caches
        times: dict[str, list[float]] = {"shoal": [], "runc": [], "podman": []}
        for i in range(runs):
            times["shoal"].append(bench.shoal(i))
            times["runc"].append(bench.raw(i))
            times["podman"].append(bench.podman_run(i))
        result: dict[str, object] = {k: stats(v) for k, v in times.items()}
        p50 = {k: statistics.median(v) for k, v in times.items()}
        result["shoal_over_runc_p50"] = round(p50["shoal"] / p50["runc"], 2)
        result["shoal_over_podman_p50"] = round(p50["shoal"] / p50["podman"], 2)
        return result
    finally:
        bench.cleanup()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20), indent=1))

"""Container start latency with Docker's seccomp profile and without it (seccomp=unconfined).

Target: the profile makes a start ≤ 5 % slower. One runtime, one busybox root; the two kinds
are started alternately in the same run (so load on the machine hits both alike) and each start
is timed from create_and_start to its return (config.json rendered, runc create with the filter
loaded, runc start). Medians over --runs of each; prints JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from shoal.agent.runtime import Runtime
from shoal.agent.runtime.runtime import RuntimeConfig
from shoal.model.container import ContainerSpec, Security

BUSYBOX = "/bin/busybox"
IMAGE = {"config": {"Cmd": ["true"], "Env": ["PATH=/bin"]}}


def rootfs(root: Path) -> Path:
    (root / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in ("sh", "true"):
        (root / "bin" / applet).symlink_to("busybox")
    return root


def start_once(rt: Runtime, root: Path, cid: str, unconfined: bool) -> float:
    opts = ["seccomp=unconfined"] if unconfined else []
    spec = ContainerSpec(id=cid, image="local/busybox", security=Security(security_opt=opts))
    t = time.perf_counter()
    rt.create_and_start(spec, IMAGE, [root])
    elapsed = time.perf_counter() - t
    deadline = time.monotonic() + 10
    while rt.get(cid).state == "running" and time.monotonic() < deadline:
        time.sleep(0.005)
    rt.delete(cid)
    return elapsed


def cleanup(rt: Runtime) -> None:
    for container in rt.list():
        with contextlib.suppress(Exception):
            rt.delete(container.id)
    for mount in Path("/proc/self/mounts").read_text().splitlines():
        if mount.split()[1].startswith(str(rt.config.bundles_dir)):
            subprocess.run(["umount", "-l", mount.split()[1]], check=False)
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        path = hierarchy / rt.config.cgroup_parent.strip("/")
        if path.is_dir():
            for child in sorted(path.rglob("*"), reverse=True):
                if child.is_dir():
                    with contextlib.suppress(OSError):
                        child.rmdir()
            with contextlib.suppress(OSError):
                path.rmdir()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=60)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("seccomp_start: needs root (runc)")
    work = Path(tempfile.mkdtemp(prefix="shoal-bench-seccomp-"))
    config = RuntimeConfig(
        state_dir=work / "state",
        bundles_dir=work / "bundles",
        logs_dir=work / "logs",
        volumes_dir=work / "volumes",
        cgroup_parent=f"/shb-{secrets.token_hex(4)}",
    )
    rt = Runtime(config)
    root = rootfs(work / "image")
    times: dict[str, list[float]] = {"seccomp": [], "unconfined": []}
    try:
        start_once(rt, root, "warm", unconfined=False)
        for i in range(args.runs):
            order = ("seccomp", "unconfined") if i % 2 == 0 else ("unconfined", "seccomp")
            for kind in order:
                times[kind].append(start_once(rt, root, f"b{i}-{kind}", kind == "unconfined"))
    finally:
        cleanup(rt)
        shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(json.dumps({
        "runs": args.runs,
        "start_ms_median": {k: round(v * 1000, 2) for k, v in med.items()},
        "start_ms_p90": {k: round(sorted(v)[int(0.9 * len(v))] * 1000, 2) for k, v in times.items()},
        "ratio_seccomp_over_unconfined": round(med["seccomp"] / med["unconfined"], 4),
        "target_ratio_max": 1.05,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()

"""Agent RSS and idle CPU with 20 containers, without the sandbox. Target ≤ 60 MB, < 1 % of a core.

(benchmarks/agent_footprint.py measures the same through a whole sandbox cluster; this one needs
only root, runc, conmon and docker-registry.) A real `shoal agent start` (shoal.entry, the
command's own import path) runs as a child with its ControlClient swapped for the tests'
FileClient (tests/integration/agent/fileclient.py): a file-backed desired state of 20 busybox
`sleep` containers. Once all 20 run and a few quiet seconds passed, it measures the agent's VmRSS
(/proc/PID/status), conmon's total VmRSS, and the agent's CPU (utime+stime of /proc/PID/stat) over
an idle window; then removes everything it made (process, containers, mounts, cgroups, temp dirs).
With --network the agent manages the network as on a real node (its own netns `shm-*`, bridge,
veths, nftables, DNS, wireguard-go; the image pre-pulled from here, the WireGuard key made as
`shoal join` makes it), and those are removed too.

Usage: sudo .venv/bin/python benchmarks/agent_rss.py [--window 30] [--containers 20] [--network]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TICKS = os.sysconf("SC_CLK_TCK")
PREFIX = "shm-"


def child(data_dir: str, client_dir: str) -> None:
    """The measured process: `shoal agent start --data-dir DATA` with a FileClient."""
    from shoal.entry import _direct_command, main

    _direct_command(["agent"])  # as main() does first, before anything else of the agent is imported
    import shoal.agent.assemble as assemble
    from tests.integration.agent.fileclient import FileClient

    assemble.Client = lambda *_: FileClient(Path(client_dir))  # type: ignore[attr-defined,assignment]
    sys.argv = ["shoal", "agent", "start", "--data-dir", data_dir, "--log-level", "warning"]
    main()


def status_kb(pid: int, key: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    return 0


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def conmon_pids(bundles: Path) -> list[int]:
    pids = []
    for pid_file in bundles.glob("*/conmon.pid"):
        with contextlib.suppress(ValueError, OSError):
            pid = int(pid_file.read_text().strip())
            if Path(f"/proc/{pid}").exists():
                pids.append(pid)
    return pids


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def sleep_image() -> Iterator[str]:
    """A docker-registry on loopback holding the tests' busybox `sleep` image."""
    from shoal.sandbox.images import cached_build, push
    from shoal.sandbox.registry import start_registry
    from tests.support.registry_fixtures import CACHE, image_specs

    root = Path(tempfile.mkdtemp(prefix=f"{PREFIX}registry-"))
    try:
        server = start_registry(root, f"127.0.0.1:{free_port()}")
        try:
            ref = f"{server.addr}/{PREFIX.rstrip('-')}/sleep:latest"
            push(cached_build(image_specs()["sleep"], CACHE), "latest", ref)
            yield ref
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@dataclasses.dataclass
class Env:
    base: Path
    config: object
    node: object
    proc: subprocess.Popen[bytes] | None = None
    netns: str = ""  # the throwaway network namespace of a network-managing agent


def make_env(network: bool) -> Env:
    from shoal.agent import config as cfg

    base = Path(tempfile.mkdtemp(prefix=PREFIX))
    tag = secrets.token_hex(3)
    net = {"bridge": f"shmbr{tag}", "wg_interface": f"shmwg{tag}"} if network else {}
    (base / "client").mkdir()
    config = cfg.AgentConfig(
        data_dir=base / "data",
        run_dir=base / "run",
        runtime_dir=base / "run" / "runtime",
        cgroup_parent=f"/{PREFIX}{secrets.token_hex(4)}",
        caddy_admin_socket=base / "run" / "caddy.sock",
        agent_listen="127.0.0.1",
        agent_port=free_port(),
        manage_network=network,
        netns_dir=base / "netns",
        **net,  # type: ignore[arg-type]
    )
    node = cfg.NodeRecord(
        "https://127.0.0.1:1", "shm-n1", "cred", "shm-secret", "10.210.9.0/24", "127.0.0.1", "10.210.0.0/16"
    )
    cfg.save(config, node)
    env = Env(base, config, node, netns=f"{PREFIX}{tag}" if network else "")
    if network:
        from shoal.agent.sys.wireguard import load_or_create_key

        load_or_create_key(config.wg_key_file)  # as `shoal join` leaves it
        subprocess.run(["ip", "netns", "add", env.netns], check=True)
        subprocess.run(["ip", "-n", env.netns, "link", "set", "lo", "up"], check=True)
    return env


def write_state(env: Env, image: str, registry: str, count: int) -> None:
    from shoal.model.container import ContainerSpec
    from shoal.model.state import NodeState

    specs = [
        ContainerSpec(id=f"shm-idle-{i}-1", service="shm-idle", replica=i, generation=1, image=image)
        for i in range(1, count + 1)
    ]
    state = NodeState(
        node="shm-n1", subnet="10.210.9.0/24", containers=specs, insecure_registries=[registry], version=1
    )
    (env.base / "client" / "desired.json").write_text(state.model_dump_json())


def prepull(env: Env, registry: str, ref: str) -> str:
    """Pulled from here into the agent's store (in its netns it cannot reach host loopback): pinned ref."""
    from shoal.agent.images import ImageStore

    store = ImageStore(env.config.images_dir, None, [registry])  # type: ignore[attr-defined]
    pinned = f"{ref.rsplit(':', 1)[0]}@{store.pull(ref).digest}"
    store.pull(pinned)
    return pinned


def start_agent(env: Env) -> subprocess.Popen[bytes]:
    log = (env.base / "agent.log").open("wb")
    enter = ["nsenter", f"--net=/run/netns/{env.netns}", "--"] if env.netns else []
    child_args = ["--child", str(env.config.data_dir), str(env.base / "client")]  # type: ignore[attr-defined]
    cmd = [*enter, sys.executable, __file__, *child_args]
    env = {**os.environ, "PYTHONMALLOC": "malloc"}  # as `shoal agent start` runs itself (agent.memory)
    return subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT, env=env
    )


def running_count(env: Env) -> int:
    from shoal.model.status import NodeStatus

    path = env.base / "client" / "status.jsonl"
    if not path.exists():
        return 0
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if not lines:
        return 0
    last = NodeStatus.model_validate_json(lines[-1])
    return sum(1 for c in last.containers if c.state == "running")


def wait_running(env: Env, count: int, timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    while running_count(env) < count:
        assert env.proc is not None
        if env.proc.poll() is not None or time.monotonic() > deadline:
            tail = (env.base / "agent.log").read_text(errors="replace")[-2000:]
            raise SystemExit(f"agent did not run {count} containers:\n{tail}")
        time.sleep(1)


def measure(env: Env, window_s: float) -> dict[str, float]:
    assert env.proc is not None
    pid = env.proc.pid
    start_cpu, start = cpu_s(pid), time.monotonic()
    time.sleep(window_s)
    cpu = (cpu_s(pid) - start_cpu) / (time.monotonic() - start)
    conmons = conmon_pids(env.config.bundles_dir)  # type: ignore[attr-defined]
    return {
        "agent_rss_mb": round(status_kb(pid) / 1024, 1),
        "agent_threads": status_kb(pid, "Threads"),
        "agent_cpu_percent_of_core": round(100 * cpu, 2),
        "conmon_count": len(conmons),
        "conmon_total_rss_mb": round(sum(status_kb(p) for p in conmons) / 1024, 1),
        "agent_rss_by_mapping_mb": rss_by_mapping(pid),
    }


def rss_by_mapping(pid: int, top: int = 8) -> dict[str, float]:
    """The agent's resident memory per mapping (heap, anonymous, each shared object), largest first."""
    sizes: dict[str, int] = {}
    name = ""
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()
        if "-" in head[0] and not head[0].endswith(":"):
            name = Path(head[5]).name if len(head) > 5 else "[anon]"
        elif head[0] == "Rss:":
            sizes[name] = sizes.get(name, 0) + int(head[1])
    ranked = sorted(sizes.items(), key=lambda kv: -kv[1])[:top]
    return {k: round(v / 1024, 1) for k, v in ranked}


def teardown(env: Env) -> None:
    from shoal.agent.assemble import runtime_config
    from shoal.agent.runtime import Runtime
    from tests.integration.agent.conftest import _remove_cgroup

    if env.proc is not None and env.proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(env.proc.pid, signal.SIGKILL)
        env.proc.wait(timeout=10)
    rt = Runtime(runtime_config(env.config))  # type: ignore[arg-type]
    for container in rt.list():
        with contextlib.suppress(Exception):
            rt.delete(container.id)
    for state in rt.runc.list():
        with contextlib.suppress(Exception):
            rt.runc.delete(state.id, force=True)
    for line in reversed(Path("/proc/self/mounts").read_text().splitlines()):
        if line.split()[1].startswith(str(env.base)):
            subprocess.run(["umount", "-l", line.split()[1]], check=False)
    _remove_cgroup(env.config.cgroup_parent)  # type: ignore[attr-defined]
    for pid_file in (env.base / "run" / "net").glob("*.pid"):  # wireguard-go
        with contextlib.suppress(ValueError, ProcessLookupError):
            os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)
    if env.netns:
        subprocess.run(["ip", "netns", "del", env.netns], check=False)
        (env.config.wg_socket_dir / f"{env.config.wg_interface}.sock").unlink(missing_ok=True)  # type: ignore[attr-defined]
    shutil.rmtree(env.base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--containers", type=int, default=20)
    parser.add_argument("--network", action="store_true", help="the agent manages the network (own netns)")
    parser.add_argument("--child", nargs=2, metavar=("DATA_DIR", "CLIENT_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with sleep_image() as image:
        env = make_env(args.network)
        try:
            registry = image.split("/", 1)[0]
            write_state(env, prepull(env, registry, image), registry, args.containers)
            env.proc = start_agent(env)
            wait_running(env, args.containers)
            time.sleep(5)
            result = measure(env, args.window)
        finally:
            teardown(env)
    out = {"benchmark": "agent_rss", "containers": args.containers, "network": args.network}
    out.update({"window_s": args.window, **result})
    out["target"] = {"agent_rss_mb": 60, "agent_cpu_percent_of_core": 1}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

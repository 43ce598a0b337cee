"""Fixtures for the agent's integration tests: a real agent as a child process, cleaned up.

`agent_env` gives a data dir with agent.json/node.json (every path under a temp dir named `sha-`,
its own runc root and cgroup parent, endpoints on 127.0.0.1 at a free port) and a FileClient
dir; `start()` runs the agent in a child process. The finalizer kills the child by pid, deletes
every container (runc and conmon), unmounts overlays and the secrets tmpfs, removes cgroups.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shoal.agent import config as cfg
from shoal.agent.assemble import runtime_config
from shoal.agent.runtime import Runtime
from shoal.model.state import NodeState
from shoal.model.status import NodeStatus

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

RUNNER = Path(__file__).parent / "run_agent.py"
SECRET = "sha-agent-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    check: Callable[[], object], timeout: float = 30.0, what: str | Callable[[], str] = "condition"
) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what if isinstance(what, str) else what()} not met in {timeout} s")


@dataclass
class AgentEnv:
    base: Path
    config: cfg.AgentConfig
    node: cfg.NodeRecord
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    netns: str = ""  # the throwaway network namespace the agent runs in (managed network only)
    version: int = 0

    @property
    def client_dir(self) -> Path:
        return self.base / "client"

    def set_state(self, state: NodeState) -> None:
        self.version += 1
        doc = state.model_copy(update={"version": self.version, "node": self.node.name})
        tmp = self.client_dir / "desired.tmp"
        tmp.write_text(doc.model_dump_json())
        tmp.replace(self.client_dir / "desired.json")

    def start(self) -> subprocess.Popen[bytes]:
        log = (self.base / f"agent-{len(self.procs)}.log").open("wb")
        enter = ["nsenter", f"--net=/run/netns/{self.netns}", "--"] if self.netns else []
        proc = subprocess.Popen(
            [*enter, sys.executable, str(RUNNER), str(self.config.data_dir), str(self.client_dir)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def kill9(self, proc: subprocess.Popen[bytes]) -> None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def statuses(self) -> list[NodeStatus]:
        path = self.client_dir / "status.jsonl"
        if not path.exists():
            return []
        lines = path.read_text().splitlines()
        return [NodeStatus.model_validate_json(line) for line in lines if line.strip()]

    def last_status(self) -> NodeStatus | None:
        found = self.statuses()
        return found[-1] if found else None

    def runtime(self) -> Runtime:
        return Runtime(runtime_config(self.config))

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.base.glob("agent-*.log")))


@pytest.fixture
def agent_env() -> Iterator[AgentEnv]:
    env = _make_env()
    try:
        yield env
    finally:
        _teardown(env)


@pytest.fixture
def net_agent_env() -> Iterator[AgentEnv]:
    """An agent that manages the network: in its own netns, with its own bridge and WireGuard."""
    tag = secrets.token_hex(3)
    env = _make_env(manage_network=True, bridge=f"shabr{tag}", wg_interface=f"shawg{tag}")
    env.netns = f"sha-{tag}"
    try:
        subprocess.run(["ip", "netns", "add", env.netns], check=True)
        subprocess.run(["ip", "-n", env.netns, "link", "set", "lo", "up"], check=True)
        yield env
    finally:
        _teardown(env)


def _make_env(**overrides: object) -> AgentEnv:
    base = Path(tempfile.mkdtemp(prefix="sha-"))
    (base / "client").mkdir()
    config = cfg.AgentConfig(
        data_dir=base / "data",
        run_dir=base / "run",
        runtime_dir=base / "run" / "runtime",
        cgroup_parent=f"/sha-{secrets.token_hex(4)}",
        caddy_admin_socket=base / "run" / "caddy.sock",
        agent_listen="127.0.0.1",
        agent_port=free_port(),
        heartbeat_s=0.2,
        supervise_s=0.2,
        resync_s=1.0,
        poll_wait_s=2.0,
        image_keep_s=1.0,
        manage_network=False,  # containers get runc's private netns; the host network is untouched
        netns_dir=base / "netns",
    )
    config = dataclasses.replace(config, **overrides)  # type: ignore[arg-type]
    node = cfg.NodeRecord(
        "https://127.0.0.1:1", "sha-n1", "cred", SECRET, "10.210.9.0/24", "127.0.0.1", "10.210.0.0/16"
    )
    cfg.save(config, node)
    return AgentEnv(base, config, node)


def _teardown(env: AgentEnv) -> None:
    for proc in env.procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    rt = env.runtime()
    for container in rt.list():
        with contextlib.suppress(Exception):
            rt.delete(container.id)
    for state in rt.runc.list():
        with contextlib.suppress(Exception):
            rt.runc.delete(state.id, force=True)
    for line in reversed(Path("/proc/self/mounts").read_text().splitlines()):
        target = line.split()[1]
        if target.startswith(str(env.base)):
            subprocess.run(["umount", "-l", target], check=False)
    _remove_cgroup(env.config.cgroup_parent)
    _stop_network(env)
    shutil.rmtree(env.base, ignore_errors=True)


def _stop_network(env: AgentEnv) -> None:
    """wireguard-go (by its pid file) and the node netns (container netns are mounts under base)."""
    for pid_file in (env.config.run_dir / "net").glob("*.pid"):
        with contextlib.suppress(ValueError, ProcessLookupError):
            os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)
    if env.netns:
        subprocess.run(["ip", "netns", "del", env.netns], check=False)
        (env.config.wg_socket_dir / f"{env.config.wg_interface}.sock").unlink(missing_ok=True)


def _remove_cgroup(parent: str) -> None:
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        path = hierarchy / parent.strip("/")
        if path.is_dir():
            for d in sorted(path.rglob("*"), key=lambda p: -len(p.parts)):
                if d.is_dir():
                    with contextlib.suppress(OSError):
                        d.rmdir()
            with contextlib.suppress(OSError):
                path.rmdir()

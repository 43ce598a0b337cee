"""Fixtures for the CLI against a real server: a temp HOME, the SHOAL_* environment, a CLI runner,
and a scripted node that joins and reports container states through the real API (shoal.client).
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from shoal.agent.join import register
from shoal.cli.main import cli
from shoal.client import Client
from shoal.client.trust import fetch_pinned_ca, join_token_fingerprint
from shoal.errors import ShoalError
from shoal.model.join_wire import JoinRequest
from shoal.model.state import NodeState
from shoal.model.status import Capacity, ContainerStatus, NodeStatus, PeerStatus
from tests.support.server_fixtures import Server

PREFIX = "shx"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("XDG_CONFIG_HOME", "SHOAL_SERVER", "SHOAL_TOKEN", "SHOAL_CACERT", "SHOAL_CONTEXT"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


@dataclass
class Shoal:
    """Runs `shoal ...` in-process with the SHOAL_* environment of a server."""

    env: dict[str, str]

    def __call__(self, *args: str, input: str | bytes | None = None, **env: str) -> Result:
        return CliRunner().invoke(
            cli, list(args), input=input, env={**self.env, **env}, catch_exceptions=False
        )


@pytest.fixture
def shoal(server: Server, home: Path) -> Shoal:
    return Shoal({"SHOAL_SERVER": server.url, "SHOAL_TOKEN": server.admin_token, "SHOAL_CACERT": server.ca})


@dataclass
class ScriptedNode:
    """A node with no agent: joins, then reports the containers of its state as a test says,
    repeating its last report every half second as the heartbeat."""

    server: Server
    name: str
    token: str = ""  # the join token; default: the server's first one
    api: Client = field(init=False)
    ca: Path = field(init=False)
    containers: list[ContainerStatus] = field(default_factory=list)
    peers: list[PeerStatus] = field(default_factory=list)  # reported as they are
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopped: threading.Event = field(default_factory=threading.Event)
    beating: threading.Thread | None = None

    def join(self) -> None:
        token = self.token or self.server.join_token
        pem = fetch_pinned_ca(self.server.url, join_token_fingerprint(token))
        with tempfile.NamedTemporaryFile(prefix=f"{PREFIX}-ca-", suffix=".pem", delete=False) as out:
            out.write(pem)
        self.ca = Path(out.name)
        capacity = Capacity(cpus=4, memory_bytes=8 << 30)
        request = JoinRequest(token=token, name=self.name, public_key=f"key-{self.name}", capacity=capacity)
        joined = register(self.server.url, pem, request.model_dump(mode="json"))  # as `shoal join` does
        self.api = Client(self.server.url, str(joined["credential"]), self.ca)
        self.report([])
        self.beating = threading.Thread(target=self._heartbeat, daemon=True)
        self.beating.start()

    def _heartbeat(self) -> None:
        while not self.stopped.wait(0.5):
            try:
                with self.lock:
                    self.report(self.containers)
            except ShoalError:  # removed by the test, or the server stopped: keep quiet
                continue

    def state(self, since: int = -1, wait: float = 0) -> NodeState:
        return self.api.get_node_state(self.name, since, wait)

    def report(self, containers: list[ContainerStatus]) -> None:
        self.containers = containers
        status = NodeStatus(
            node=self.name,
            containers=containers,
            peers=self.peers,
            capacity=Capacity(cpus=4, memory_bytes=8 << 30),
        )
        self.api.post_status(self.name, status)

    def report_all(self, state: str, health: str = "none", message: str = "") -> NodeState:
        current = self.state()
        fields = {"state": state, "health": health, "message": message}
        with self.lock:
            self.report(
                [ContainerStatus.model_validate({**c.model_dump(), **fields}) for c in current.containers]
            )
        return current

    def close(self) -> None:
        self.stopped.set()
        if self.beating is not None:
            self.beating.join(10)
        self.api.close()
        self.ca.unlink(missing_ok=True)


@pytest.fixture
def node(server: Server) -> Iterator[ScriptedNode]:
    made = ScriptedNode(server, f"{PREFIX}-n1")
    made.join()
    try:
        yield made
    finally:
        made.close()


def store_service(
    server: Server, name: str, replicas: int = 1, image: str = "registry.shx:5000/web:1"
) -> None:
    """A revision stored as a deploy would, bypassing Compose parsing (for waiting and scaling tests)."""
    from shoal.control import deploy
    from shoal.control.revision import RevisionSpec
    from shoal.control.store.db import connect

    spec = {"template": {"id": "", "service": name, "image": image}, "replicas": replicas}
    with connect(server.dsn, autocommit=False) as conn:
        deploy.store(conn, "shx", {name: RevisionSpec.model_validate(spec)})
        conn.commit()


def wait_until(predicate: Callable[[], object], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)

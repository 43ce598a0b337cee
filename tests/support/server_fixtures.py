"""Fixtures for a real control plane: a private PostgreSQL and running `shoal server`s over HTTPS.

`postgres` (session): initdb into a temp dir, run as the postgres user on a Unix socket in that dir
plus a loopback port; each server gets its own database. `server` (function): `shoal server init`
+ `shoal server start` as a subprocess on an ephemeral loopback port, with `url`, `ca`,
`admin_token`, `join_token`. `server_factory` starts more (e.g. two servers on one database).
Everything is stopped and removed in `finally`, by pid.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from shoal.control import postgres as pg

PREFIX = "shs"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tls(ca: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca)


@dataclass
class Postgres:
    pg_dir: Path
    port: int

    def dsn(self, dbname: str = "postgres") -> str:
        return pg.dsn(self.pg_dir, port=self.port, dbname=dbname)

    def new_database(self) -> str:
        name = f"{PREFIX}_{secrets.token_hex(4)}"
        pg.create_database(self.dsn(), name)
        return self.dsn(name)

    def stop(self) -> None:
        pg.stop(self.pg_dir)

    def start(self) -> None:
        pg.start(self.pg_dir)


@contextmanager
def running_postgres() -> Iterator[Postgres]:
    """A throwaway PostgreSQL (Unix socket in a temp dir + a loopback port), removed afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-pg-"))
    instance = Postgres(tmp / "pg", free_port())
    try:
        pg.init(instance.pg_dir, port=instance.port, listen="127.0.0.1", fast=True)
        instance.start()
        yield instance
    finally:
        if pg.is_running(instance.pg_dir):
            instance.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    with running_postgres() as instance:
        yield instance


def shoal(*args: str, **kwargs: object) -> list[str]:
    return [sys.executable, "-m", "shoal", *args]


@dataclass
class Server:
    url: str
    ca: str
    admin_token: str
    join_token: str
    data_dir: Path
    dsn: str
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(default_factory=lambda: Path("/dev/null"))

    def client(self, token: str | None = None, timeout: float = 30.0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.admin_token}"}
        return httpx.Client(base_url=self.url, verify=tls(self.ca), headers=headers, timeout=timeout)

    def start(self, listen: str = "", extra: tuple[str, ...] = ()) -> None:
        """Start (or restart) `shoal server start` and wait until it answers."""
        args = ["server", "start", "--data-dir", str(self.data_dir), *extra]
        url = self.url
        if listen:
            args += ["--listen", listen]
            url = f"https://{listen}"
        self.log = self.data_dir / f"server-{secrets.token_hex(3)}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(shoal(*args), stdout=out, stderr=subprocess.STDOUT)
        wait_ready(url, self.ca, self.proc, self.log)

    def kill(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_ready(url: str, ca: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"shoal server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/api/v1/health", verify=tls(ca), timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"shoal server did not answer within {timeout}s: {log.read_text()[-2000:]}")


def init_server(dsn: str, data_dir: Path, port: int, *extra: str) -> Server:
    done = subprocess.run(
        shoal(
            "server",
            "init",
            "--db",
            dsn,
            "--data-dir",
            str(data_dir),
            "--listen",
            f"127.0.0.1:{port}",
            "--advertise",
            f"https://127.0.0.1:{port}",
            "--output",
            "json",
            *extra,
        ),
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ},
    )
    if done.returncode != 0:
        raise RuntimeError(f"shoal server init failed: {done.stderr[-2000:]}")
    info = json.loads(done.stdout)
    return Server(
        url=info["url"],
        ca=info["ca"],
        admin_token=info["admin_token"],
        join_token=info["join_token"],
        data_dir=data_dir,
        dsn=dsn,
    )


ServerFactory = Callable[..., Server]


@pytest.fixture
def server_factory(postgres: Postgres) -> Iterator[ServerFactory]:
    """Make initialised servers (each its own database unless `dsn` is given); all stopped after."""
    made: list[Server] = []
    tmp = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-srv-"))

    def make(*extra: str, start: bool = True, share: Server | None = None) -> Server:
        """A new server; with `share`, a second `server start` of that one on another port."""
        if share is not None:
            port = free_port()
            srv = replace(share, url=f"https://127.0.0.1:{port}", proc=None)
            made.append(srv)
            srv.start(listen=f"127.0.0.1:{port}")
            return srv
        data_dir = tmp / f"server{len(made)}"
        srv = init_server(postgres.new_database(), data_dir, free_port(), *extra)
        made.append(srv)
        if start:
            srv.start()
        return srv

    try:
        yield make
    finally:
        for srv in made:
            srv.kill()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def server(server_factory: ServerFactory) -> Server:
    """A fresh running server on its own database (heartbeat grace 3 s for faster tests)."""
    return server_factory("--grace", "3")


class FakeAgent:
    """A node without containers: joins, long-polls its state and reports every container running.

    `health(container) -> str` decides the health it reports (default "none"); `failing` images
    are reported as failed instead. For API tests and the benchmarks.
    """

    def __init__(self, server: Server, name: str, endpoint: str | None = "192.0.2.1:51820") -> None:
        self.name = name
        self.lean = False
        self.poll_wait = 1
        self.failing: set[str] = set()
        self.states: list[dict[str, object]] = []
        self.applies = False  # report each state as applied (as a real agent does after its pass)
        self.held: tuple[int, int] | None = None  # report this (version, cluster_version) as applied
        self._server = server
        self._stop = threading.Event()
        with server.client(server.join_token) as c:  # the join token is checked from the header
            body = {
                "token": server.join_token,
                "name": name,
                "public_key": f"pk-{name}",
                "endpoint": endpoint,
                "capacity": {"cpus": 8, "memory_bytes": 16 << 30},
            }
            r = c.post("/api/v1/join", json=body)
        r.raise_for_status()
        self.joined = r.json()
        self._http = server.client(self.joined["credential"], timeout=70)
        self._thread = threading.Thread(target=self._run, name=f"fake-{name}", daemon=True)
        self._beat = threading.Thread(target=self._heartbeat, name=f"beat-{name}", daemon=True)
        self._last: dict[str, Any] = {"node": name}

    def start(self, poll_wait: int = 1) -> FakeAgent:
        """Long-poll with `poll_wait`; above 1 s a separate thread heartbeats every second."""
        self.poll_wait = poll_wait
        self._thread.start()
        if poll_wait > 1:
            self._beat.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self._beat.is_alive():
            self._beat.join(timeout=5)
        self._http.close()

    def _heartbeat(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self._http.post(f"/api/v1/nodes/{self.name}/status", json=self._last)
            except httpx.HTTPError:
                continue

    def report(self, state: dict[str, Any]) -> None:
        conts = [
            {"id": c["id"], "state": "failed" if c["image"] in self.failing else "running", "ip": c["ip"]}
            for c in state["containers"]
        ]
        body = {
            "node": self.name,
            "state_version": state["version"],
            "containers": conts,
            "capacity": {"cpus": 8, "memory_bytes": 16 << 30},
        }
        if self.applies:
            applied = self.held or (int(state["version"]), int(state.get("cluster_version", 0)))
            body["applied_version"], body["applied_cluster_version"] = applied
        self._last = body
        self._http.post(f"/api/v1/nodes/{self.name}/status", json=body)

    def _parse(self, text: str) -> dict[str, Any]:
        """The state document; a `lean` agent skips the DNS/ingress tail (the server appends it last)."""
        cut = text.find(',"dns":') if self.lean else -1
        return dict(json.loads(text[:cut] + "}" if cut > 0 else text))

    def _run(self) -> None:
        version = -1
        while not self._stop.is_set():
            try:
                params = {"since": version, "wait": self.poll_wait}
                state = self._parse(self._http.get(f"/api/v1/nodes/{self.name}/state", params=params).text)
                version = int(state["version"])
                if not self.lean:
                    self.states.append(state)
                self.report(state)
            except (httpx.HTTPError, KeyError, ValueError):
                self._stop.wait(0.2)

"""Failing over between servers: every answer names the cluster's servers; the client keeps them
and, once the server it talks to is killed, carries on with another one (a request that never
left, or one safe to repeat); the CLI context and the agent's node.json keep the list."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

from shoal.client import Client
from tests.integration.control.helpers import wait_for
from tests.integration.control.test_server_join import _join, _servers
from tests.support.server_fixtures import Server, ServerFactory, shoal


def _both(first: Server, second: Server) -> None:
    second.start()
    wait_for(lambda: len(_servers(second)) == 2 and len(_servers(first)) == 2, what="both servers")


def _kill(srv: Server) -> None:
    assert srv.proc is not None
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait()


def test_the_client_learns_the_servers_and_fails_over(server_factory: ServerFactory, tmp_path: Path) -> None:
    first = server_factory()
    second = _join(first, tmp_path)
    try:
        _both(first, second)
        told: list[list[str]] = []
        client = Client(first.url, first.admin_token, Path(first.ca), on_servers=told.append)

        def learned() -> bool:
            client.servers()
            return bool(told) and set(told[-1]) == {first.url, second.url}

        wait_for(learned, what="the client to learn both servers")
        _kill(first)
        assert {s.url for s in client.servers()} == {first.url, second.url}  # a GET: sent again
        assert client.server == first.url and client.transport.root == second.url
        fresh = Client(first.url, first.admin_token, Path(first.ca), servers=[first.url, second.url])
        fresh.create_secret("after", b"failover")  # a POST that never left: sent to the next
        assert "after" in [s.name for s in client.secrets()]
    finally:
        second.kill()


def test_the_cli_context_keeps_the_servers(server_factory: ServerFactory, tmp_path: Path) -> None:
    first = server_factory()
    second = _join(first, tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(shoal(*args), capture_output=True, text=True, env=env, timeout=60, check=False)

    try:
        _both(first, second)
        logged = cli("login", first.url, "--token", first.admin_token, "--ca", first.ca)
        assert logged.returncode == 0, logged.stderr
        config = tmp_path / "config" / "shoal" / "config.json"

        def kept() -> list[str]:
            assert cli("server", "ls").returncode == 0
            contexts = json.loads(config.read_text())["contexts"].values()
            return [u for c in contexts for u in c.get("servers", [])]

        wait_for(lambda: set(kept()) == {first.url, second.url}, what="the context to keep both servers")
        _kill(first)
        listed = cli("server", "ls", "--output", "json")
        assert listed.returncode == 0, listed.stderr
        assert {r["url"] for r in json.loads(listed.stdout)} == {first.url, second.url}
    finally:
        second.kill()

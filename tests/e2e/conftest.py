"""The one sandbox shared by every e2e test: `shoal sandbox up --nodes 4 --nat 2`, `down` at the end.

``SHOAL_E2E_NO_CLUSTER=1`` builds the topology only (network, registry, node holders, example
image) and skips the tests that need shoal's server and agents. The sandbox's state lives in a
temporary directory; `down` runs even when the session fails.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.sandbox.teardown import cgroup_pids
from tests.e2e.helpers import SANDBOX, Sandbox
from tests.e2e.machine_lock import machine_lock

E2E_DIR = Path(__file__).parent
NO_CLUSTER = os.environ.get("SHOAL_E2E_NO_CLUSTER") == "1"


def sandbox_cli(
    directory: Path, env: dict[str, str], *args: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    argv = [*SANDBOX, *args, "--dir", str(directory)]
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout, env=env)


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Iterator[None]:
    """A run that holds e2e tests holds the machine's lock throughout (the sandbox's names are
    fixed); taken here rather than in a fixture so the wait is not cut by a test's timeout."""
    if not any(E2E_DIR in Path(str(item.path)).parents for item in session.items):
        return (yield)
    with machine_lock():
        return (yield)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    directory = tmp_path_factory.mktemp("sbx-e2e")
    # The CLI context `up` writes goes to a throwaway config dir, not the person's own.
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path_factory.mktemp("sbx-config"))}
    flags = ["--no-cluster"] if NO_CLUSTER else []
    try:
        up = sandbox_cli(directory, env, "up", "--nodes", "4", "--nat", "2", *flags)
        assert up.returncode == 0, f"sandbox up failed: {up.stderr.strip()}"
        status = sandbox_cli(directory, env, "status", "--output", "json")
        yield Sandbox(directory, json.loads(status.stdout), env)
    finally:
        down = sandbox_cli(directory, env, "down", timeout=120)
        assert down.returncode == 0, down.stderr
        assert cgroup_pids() == [], "containers of the sandbox outlived `down`"


@pytest.fixture(scope="session")
def cluster(sandbox: Sandbox) -> Sandbox:
    """The sandbox with shoal's server and agents running (skipped when built without them)."""
    if NO_CLUSTER:
        pytest.skip("sandbox built with SHOAL_E2E_NO_CLUSTER=1: no server or agents")
    return sandbox

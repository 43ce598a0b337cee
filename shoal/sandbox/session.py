"""A throwaway sandbox for scripts (the benchmarks): `up` in a temp dir, `down` when done.

Runs the same `shoal sandbox` commands a person would, with the CLI's context written to a
temporary config dir so the person's own contexts are untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shoal.errors import ShoalError
from shoal.sandbox import state
from shoal.sandbox.state import SandboxState

SANDBOX = [sys.executable, "-m", "shoal.sandbox"]
SHOAL = [sys.executable, "-m", "shoal"]


@dataclass
class Session:
    """A running throwaway sandbox: its record and the environment that points the CLI at it."""

    dir: Path
    env: dict[str, str]

    @property
    def record(self) -> SandboxState:
        return state.load(self.dir)

    def shoal(self, *args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
        argv = [*SHOAL, *args]
        return subprocess.run(
            argv, capture_output=True, text=True, check=False, timeout=timeout_s, env=self.env
        )

    def check(self, *args: str, timeout_s: float = 300) -> str:
        got = self.shoal(*args, timeout_s=timeout_s)
        if got.returncode != 0:
            raise ShoalError(f"shoal {' '.join(args)}: {(got.stderr or got.stdout).strip()}")
        return got.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.check(*args, "--output", "json"))


@contextmanager
def temporary_sandbox(
    nodes: int, nat: int, timeout_s: float = 300, nat_mode: str = "shared"
) -> Iterator[Session]:
    """`shoal sandbox up` in a temp dir; `down` and remove the dir however the body ends."""
    tmp = Path(tempfile.mkdtemp(prefix="sbx-session-"))
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp / "config")}
    directory = tmp / "sandbox"
    try:
        up = [*SANDBOX, "up", "--nodes", str(nodes), "--nat", str(nat), "--nat-mode", nat_mode]
        up += ["--dir", str(directory)]
        got = subprocess.run(up, capture_output=True, text=True, check=False, timeout=timeout_s, env=env)
        if got.returncode != 0:
            raise ShoalError(f"sandbox up failed: {got.stderr.strip()}")
        yield Session(directory, env)
    finally:
        subprocess.run([*SANDBOX, "down", "--dir", str(directory)], capture_output=True, check=False, env=env)
        shutil.rmtree(tmp, ignore_errors=True)

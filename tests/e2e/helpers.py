"""What the e2e tests share: the sandbox handle that the session fixture yields, and waiting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SANDBOX = [sys.executable, "-m", "shoal.sandbox"]
SHOAL = [sys.executable, "-m", "shoal"]


@dataclass
class Sandbox:
    """The running sandbox: its directory, `status --output json`, and the CLI's environment."""

    dir: Path
    status: dict[str, Any]
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    def node(self, name: str) -> dict[str, Any]:
        return next(n for n in self.status["nodes"] if n["name"] == name)

    def run(self, *args: str, check: bool = False, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """`shoal sandbox ARGS --dir DIR`, output captured."""
        argv = [*SANDBOX, *args[:1], "--dir", str(self.dir), *args[1:]]
        return subprocess.run(
            argv, capture_output=True, text=True, check=check, timeout=timeout, env=self.env
        )

    def exec(self, node: str, *cmd: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self.run("exec", node, "--", *cmd, timeout=timeout)

    def shoal(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """The `shoal` CLI, pointed at the sandbox by the context `up` wrote."""
        argv = [*SHOAL, *args]
        return subprocess.run(
            argv, capture_output=True, text=True, check=False, timeout=timeout, env=self.env
        )

    def shoal_json(self, *args: str) -> Any:
        got = self.shoal(*args, "--output", "json")
        assert got.returncode == 0, got.stderr
        return json.loads(got.stdout)


def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Poll ``check`` until true; returns the seconds it took, fails naming ``what``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"{what}: not within {timeout_s}s")
        time.sleep(0.2)
    return time.monotonic() - start

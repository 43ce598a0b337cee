"""The agent's memory measures: the slim import path of `shoal agent`, malloc arenas, the trim step."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import pytest

from shoal.agent import memory

SLIM_CHECK = """
import sys
from pathlib import Path
from shoal.entry import _direct_command
_direct_command(["agent"])
import shoal.agent.assemble
from pyroute2.iproute.linux import IPRoute
from shoal.agent.sys.wireguard import WireGuard
from shoal.agent.net import nsthread
import httpx
heavy = ("rich", "pygments", "pyroute2.ndb", "sqlite3", "flask", "werkzeug", "cheroot", "shoal.cli.main")
heavy += ("cryptography",)
heavy = [m for m in heavy if m in sys.modules]
assert not heavy, heavy
with IPRoute() as ipr:
    assert ipr.get_links()  # the submodules work without the package facade
print("ok")
"""


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=60, check=False)


def test_agent_command_imports_neither_cli_nor_the_pyroute2_facade() -> None:
    done = run("-c", SLIM_CHECK)
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr


def test_agent_commands_run_directly_and_the_rest_through_the_cli() -> None:
    agent = run("-m", "shoal", "agent", "-h")
    assert agent.returncode == 0 and "start" in agent.stdout and "install" in agent.stdout
    root = run("-m", "shoal", "--help")
    assert root.returncode == 0
    assert "agent" in root.stdout and "join" in root.stdout and "ps" in root.stdout


def test_arenas_are_capped_on_glibc() -> None:
    assert memory.limit_arenas(8) is True  # 8 per core is glibc's own default: harmless here


def test_trim_step_releases_at_most_once_per_interval() -> None:
    step = memory.TrimStep(every_s=3600)
    try:
        step(None)
        first = step.last
        frozen = gc.get_freeze_count()
        step(None)
        assert step.last == first and frozen > 0
    finally:
        gc.unfreeze()


def test_private_key_is_read_as_made_and_made_when_missing(tmp_path: Path) -> None:
    from shoal.agent.sys.wireguard import load_or_create_key, load_private_key, public_key_of

    path = tmp_path / "wg.key"
    private = load_private_key(path)  # made (0600) on first use
    assert load_or_create_key(path)[0] == private == load_private_key(path)
    assert len(public_key_of(private)) == 44


def test_the_agent_runs_itself_again_with_the_system_malloc(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, list[str], dict[str, str]]] = []
    monkeypatch.setattr(memory.os, "execve", lambda path, argv, env: calls.append((path, argv, env)))
    monkeypatch.setenv("PYTHONMALLOC", "malloc")
    memory.use_system_malloc(["agent", "start"])
    assert calls == []  # already so: no second exec
    monkeypatch.delenv("PYTHONMALLOC")
    memory.use_system_malloc(["agent", "start", "--data-dir", "/d"])
    ((path, argv, env),) = calls
    assert argv == [path, "-m", "shoal.entry", "agent", "start", "--data-dir", "/d"]
    assert env["PYTHONMALLOC"] == "malloc"

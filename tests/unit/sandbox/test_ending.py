"""Ending the sandbox's processes: SIGTERM, SIGKILL after the grace, and nothing left behind
(no zombie of ours either). Each test ends only the processes it started, by pid."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from shoal.pids import alive
from shoal.sandbox.procs import end_processes
from shoal.sandbox.registry import stop_pid

IGNORES_TERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True); time.sleep(60)"
)


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait()


def spawn(procs: list[subprocess.Popen[bytes]], code: str) -> int:
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=True)
    procs.append(proc)
    assert proc.stdout is not None and proc.stdout.readline()  # running, its handler set
    return proc.pid


def test_end_processes_terms_kills_the_stubborn_and_reaps_both(
    started: list[subprocess.Popen[bytes]],
) -> None:
    polite = spawn(started, "import time; print(1, flush=True); time.sleep(60)")
    stubborn = spawn(started, IGNORES_TERM)
    assert end_processes([polite, stubborn], grace_s=0.5) == [polite, stubborn]
    assert not alive(polite) and not alive(stubborn)
    assert [p.poll() for p in started] == [0, 0]  # reaped already: Popen finds no child left


def test_stop_pid_kills_a_group_that_ignores_sigterm(started: list[subprocess.Popen[bytes]]) -> None:
    pid = spawn(started, IGNORES_TERM)
    stop_pid(pid, grace_s=0.3)
    assert not alive(pid)

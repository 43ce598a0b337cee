"""shoal.pids: whether a process runs (a zombie does not), reaping our own, waiting it out."""

from __future__ import annotations

import os
import subprocess
import sys

from shoal.pids import alive, process_state, reap, wait_gone


def test_this_process_is_alive_and_no_process_is_not() -> None:
    assert alive(os.getpid())
    assert not alive(None) and not alive(0) and not alive(-1)


def test_the_state_letter_follows_a_name_with_parentheses() -> None:
    assert process_state("42 (a) b) Z 1 42") == "Z"
    assert process_state("42 (sleep) S 1 42") == "S"
    assert process_state("") == ""


def test_an_exited_child_is_gone_before_and_after_it_is_reaped() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        assert wait_gone(child.pid, 10)  # a zombie already counts as gone, and is reaped
        assert not alive(child.pid)
        assert not reap(child.pid)  # nothing left to collect
    finally:
        child.kill()
        child.wait()


def test_a_running_child_is_alive_until_it_ends() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert alive(child.pid)
        assert not wait_gone(child.pid, 0.1)
        child.terminate()
        assert wait_gone(child.pid, 10)
    finally:
        child.kill()
        child.wait()

"""The agent's bounded pool and capped exec output (agent/bounded.py, agent/sys/runc.py)."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest

from shoal.agent.bounded import BoundedPool
from shoal.agent.sys.runc import _read_capped

pytestmark = pytest.mark.unit


def test_the_pool_refuses_past_workers_and_queue() -> None:
    pool = BoundedPool(2, 1, "t")
    gate = threading.Event()
    try:
        assert [pool.submit(gate.wait) for _ in range(4)] == [True, True, True, False]
        gate.set()
        deadline = time.monotonic() + 5
        while not pool.submit(lambda: None):
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        gate.set()
        pool.shutdown()


def test_output_is_capped_and_the_rest_drained() -> None:
    proc = subprocess.Popen(
        ["head", "-c", "5000000", "/dev/zero"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    output, finished = _read_capped(proc, time.monotonic() + 10, 4096)
    assert finished and len(output) == 4096
    assert proc.wait(5) == 0


def test_a_chatty_process_past_its_deadline_is_reported_unfinished() -> None:
    proc = subprocess.Popen(["yes"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        started = time.monotonic()
        output, finished = _read_capped(proc, time.monotonic() + 0.5, 1000)
        assert not finished and len(output) == 1000
        assert time.monotonic() - started < 2
    finally:
        proc.kill()
        proc.wait()

"""The e2e session holds the machine's lock and names itself as the sandbox's owner."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from tests.e2e import machine_lock


def test_the_session_holds_the_machine_lock_and_records_its_pid() -> None:
    assert machine_lock.OWNER.read_text() == str(os.getpid())
    with machine_lock.LOCK.open("a") as other, pytest.raises(BlockingIOError):
        fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_an_owner_that_is_gone_marks_a_sandbox_as_orphaned(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    owner = tmp_path / "owner"
    monkeypatch.setattr(machine_lock, "OWNER", owner)
    assert not machine_lock._owner_dead()  # no record: someone's own sandbox, never reclaimed
    owner.write_text(str(os.getpid()))
    assert not machine_lock._owner_dead()
    owner.write_text("999999999")
    assert machine_lock._owner_dead()

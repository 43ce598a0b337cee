"""The runc wrapper reads container states from runc's own state files: the same answers as
`runc list` and `runc state`, for created, running and stopped containers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.agent.sys.runc import Runc, RuncState, parse_time
from tests.integration.runtime.conftest import remove_cgroup

CGROUP = "shc-statefiles"


def _bundle(directory: Path, rootfs: Path, cid: str) -> Path:
    bundle = directory / cid
    bundle.mkdir()
    subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True)
    config = json.loads((bundle / "config.json").read_text())
    config["root"] = {"path": str(rootfs), "readonly": True}
    config["process"].update(args=["/bin/sleep", "60"], terminal=False)
    config["linux"]["cgroupsPath"] = f"{CGROUP}/{cid}"
    (bundle / "config.json").write_text(json.dumps(config))
    return bundle


def _runc_says(runc: Runc, *verb: str) -> str:
    return subprocess.run(runc.args(*verb), check=True, capture_output=True, text=True).stdout


def _as_told(obj: dict[str, object]) -> RuncState:
    """One container as `runc state` or `runc list --format json` tells it."""
    created = parse_time(str(obj["created"]))
    pid = int(str(obj.get("pid") or 0))
    return RuncState(str(obj["id"]), pid, str(obj["status"]), str(obj.get("bundle", "")), created)


def _runc_list(runc: Runc) -> list[RuncState]:
    return [_as_told(o) for o in json.loads(_runc_says(runc, "list", "--format", "json")) or []]


def _runc_state(runc: Runc, container_id: str) -> RuncState:
    return _as_told(json.loads(_runc_says(runc, "state", container_id)))


@pytest.fixture
def runc(workdir: Path) -> Iterator[Runc]:
    wrapper = Runc(root=workdir / "runc")
    try:
        yield wrapper
    finally:
        for state in _runc_list(wrapper):
            wrapper.delete(state.id, force=True)
        remove_cgroup(CGROUP)


def _run(runc: Runc, *verb: str) -> None:
    quiet = subprocess.DEVNULL  # the container's stdio: a pipe here would be held open by it
    subprocess.run(runc.args(*verb), check=True, stdin=quiet, stdout=quiet, stderr=quiet, timeout=30)


def _make(runc: Runc, workdir: Path, rootfs: Path) -> None:
    for cid in ("c-created", "c-running", "c-stopped"):
        _run(runc, "create", "--bundle", str(_bundle(workdir, rootfs, cid)), cid)
    _run(runc, "start", "c-running")
    _run(runc, "start", "c-stopped")
    pid = _runc_state(runc, "c-stopped").pid
    os.kill(pid, signal.SIGKILL)
    while _runc_state(runc, "c-stopped").status != "stopped":
        time.sleep(0.01)


def test_states_read_from_files_match_runc(runc: Runc, workdir: Path, rootfs: Path) -> None:
    _make(runc, workdir, rootfs)
    from_runc = _runc_list(runc)
    assert [(s.id, s.status) for s in from_runc] == [
        ("c-created", "created"), ("c-running", "running"), ("c-stopped", "stopped"),
    ]  # fmt: skip
    assert runc.list() == from_runc
    assert [runc.state(s.id) for s in from_runc] == [_runc_state(runc, s.id) for s in from_runc]


def test_an_empty_or_missing_root_lists_nothing(tmp_path: Path) -> None:
    assert Runc(root=tmp_path / "never-made").list() == []
    (tmp_path / "root" / "half-made").mkdir(parents=True)  # runc has not written its state yet
    assert Runc(root=tmp_path / "root").list() == []

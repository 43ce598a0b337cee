"""Pulls run off the reconcile thread with a deadline (agent/reconcilers/pulls, containers).

A pass that meets a slow pull leaves its container "pulling" and goes on: the other containers of
the node start in the same pass. The pull's end wakes the loop and the next pass starts it; a pull
past its deadline fails the container with one line; a cached image starts in one pass.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shoal.agent.images import ImageError
from shoal.agent.images.limits import Deadline
from shoal.agent.reconcilers.containers import ContainersReconciler, Seen
from shoal.agent.reconcilers.pulls import Pulls
from shoal.agent.reconcilers.secretfs import SecretFs
from shoal.model.container import ContainerSpec
from shoal.model.state import NodeState

from .test_start_overlap import FakeRuntime

DIGEST = "sha256:" + "a" * 64


class SlowImages:
    """Images whose pull of ``slow`` waits for ``release`` (or its deadline); others are instant."""

    def __init__(self, slow: str) -> None:
        self.slow = slow
        self.release = threading.Event()
        self.pulls: list[str] = []
        self.gcs: list[list[str]] = []

    def pull(
        self,
        ref: str,
        insecure: Any,
        policy: str = "always",
        logins: Any = (),
        deadline: Deadline | None = None,
    ) -> Any:
        self.pulls.append(ref)
        while ref == self.slow and not self.release.wait(0.02):
            if deadline is not None:
                deadline.check()
        return type("Image", (), {"digest": DIGEST, "config": {}})()

    def gc(self, in_use: Any) -> list[str]:
        self.gcs.append(sorted(in_use))
        return []


def state(*specs: ContainerSpec) -> NodeState:
    return NodeState(node="n1", subnet="10.210.1.0/24", containers=list(specs))


def reconciler(tmp_path: Path, images: SlowImages, timeout_s: float = 30.0) -> ContainersReconciler:
    return ContainersReconciler(
        FakeRuntime([], create_s=0.0), images, SecretFs(tmp_path), pull_timeout_s=timeout_s, pull_wait_s=0.2
    )


def test_a_slow_pull_does_not_hold_up_the_other_starts(tmp_path: Path) -> None:
    images = SlowImages("r/huge:1")
    rec = reconciler(tmp_path, images)
    woken = threading.Event()
    rec.pulled = woken.set
    huge, web = ContainerSpec(id="huge-1", image="r/huge:1"), ContainerSpec(id="web-1", image="r/web:1")
    started = time.monotonic()
    rec.reconcile(state(huge, web), [], {})
    assert time.monotonic() - started < 2
    runtime = rec.runtime
    assert isinstance(runtime, FakeRuntime)
    assert runtime.started == ["web-1"]
    assert rec.outcomes["huge-1"].state == "pulling" and rec.outcomes["web-1"].state == "running"
    rec.reconcile(state(huge, web), [], {"web-1": _running("web-1")})  # still pulling: no new pull
    assert images.pulls.count("r/huge:1") == 1 and rec.outcomes["huge-1"].attempts == 1
    woken.clear()
    images.release.set()
    assert woken.wait(5) and wait_until(lambda: rec.pulls.running() == [])  # its end woke the loop
    rec.reconcile(state(huge, web), [], {"web-1": _running("web-1")})
    assert rec.outcomes["huge-1"].message == ""
    assert runtime.started == ["web-1", "huge-1"] and rec.outcomes["huge-1"].state == "running"


def test_a_pull_past_its_deadline_fails_the_container_with_one_line(tmp_path: Path) -> None:
    images = SlowImages("r/huge:1")
    rec = reconciler(tmp_path, images, timeout_s=0.5)
    woken = threading.Event()
    rec.pulled = woken.set
    huge = ContainerSpec(id="huge-1", image="r/huge:1")
    rec.reconcile(state(huge), [], {})
    assert woken.wait(5) and wait_until(lambda: rec.pulls.running() == [])
    rec.reconcile(state(huge), [], {})
    outcome = rec.outcomes["huge-1"]
    assert outcome.state == "failed"
    assert outcome.message == "image r/huge:1: pull: did not finish within 0.5s (agent config pull_timeout_s)"


def test_image_gc_waits_for_pulls_and_keeps_what_they_pulled(tmp_path: Path) -> None:
    images = SlowImages("r/huge:1")
    rec = reconciler(tmp_path, images)
    huge = ContainerSpec(id="huge-1", image="r/huge:1")
    rec.reconcile(state(huge), [], {})
    rec._gc()
    assert images.gcs == []  # a pull runs: its image is in no container yet
    images.release.set()
    assert wait_until(lambda: rec.pulls.running() == [])
    rec._gc()
    assert images.gcs == [[DIGEST]]  # pulled, not yet started: kept
    rec.reconcile(state(), [], {})  # no longer wanted: the ended pull is forgotten
    assert rec.pulls.held() == []


def test_a_quick_pull_starts_in_the_same_pass(tmp_path: Path) -> None:
    images = SlowImages("none")
    rec = reconciler(tmp_path, images)
    rec.reconcile(state(ContainerSpec(id="web-1", image="r/web:1")), [], {})
    assert rec.outcomes["web-1"].state == "running"


def test_a_failed_pull_is_raised_to_every_start_of_the_pass_then_forgotten() -> None:
    class Failing:
        calls = 0

        def pull(
            self,
            ref: str,
            insecure: Any,
            policy: str = "always",
            logins: Any = (),
            deadline: Deadline | None = None,
        ) -> Any:
            Failing.calls += 1
            raise ImageError(f"image {ref} layer sha256:x: refused: has more than 10 entries")

    pulls = Pulls(Failing(), wait_s=5)
    for _ in range(2):
        with pytest.raises(ImageError, match="more than 10 entries"):
            pulls.poll("r/bomb:1", [], "always")
    assert Failing.calls == 1
    pulls.end_pass()
    assert pulls.running() == []
    with pytest.raises(ImageError):
        pulls.poll("r/bomb:1", [], "always")
    assert Failing.calls == 2


def wait_until(check: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    ends = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > ends:
            return False
        time.sleep(0.01)
    return True


def _running(container_id: str) -> Seen:
    return Seen(container_id, "running", pid=1, started_at=time.time())

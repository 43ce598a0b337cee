"""A start plugs the container's network in while runc creates it (agent/reconcilers/containers).

The network's `attach` gives the netns, address and files at once and leaves the veth to
`Attached.plug`, which runs on a thread while the runtime creates the container; the runtime
waits for it (`before_start`) before the process starts. The plug begins once the container's
bundle is ready (`before_create`), so its Python does not compete with the bundle's for the GIL.
A failed plug fails the start with its message, and nothing is cleaned up while a plug is still
running.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from shoal.agent.net.nsthread import Background
from shoal.agent.reconcilers.containers import Attached, ContainersReconciler, Seen
from shoal.agent.reconcilers.secretfs import SecretFs
from shoal.errors import ShoalError
from shoal.model.container import ContainerSpec
from shoal.model.state import NodeState


@dataclass
class FakeRuntime:
    log: list[str]
    create_s: float = 0.05
    fail_create: bool = False
    started: list[str] = field(default_factory=list)
    before_start: Callable[[], None] | None = None

    def observe(self) -> dict[str, Seen]:
        return {}

    def start(
        self,
        spec: ContainerSpec,
        image: Any,
        attached: Attached,
        secrets_dir: Path | None,
        *,
        before_create: Callable[[], None] | None = None,
        before_start: Callable[[], None] | None = None,
    ) -> None:
        self.before_start = before_start
        self.log.append("bundle ready")
        if before_create is not None:
            before_create()
        self.log.append("create")
        time.sleep(self.create_s)
        if self.fail_create:
            raise ShoalError("runc create: no such file")
        if before_start is not None:
            before_start()
        self.log.append("start")
        self.started.append(spec.id)

    def remove(self, container_id: str, grace_s: float) -> None: ...
    def stop(self, container_id: str, grace_s: float) -> None: ...
    def exec_probe(self, container_id: str, argv: list[str], timeout_s: float) -> tuple[int, str]:
        return 0, ""

    def supervise(self, force: bool = True, boot: bool = False) -> list[str]:
        return []


class FakeImages:
    def pull(
        self, ref: str, insecure: Any, policy: str = "always", logins: Any = (), deadline: Any = None
    ) -> Any:
        return type("Image", (), {"digest": "sha256:" + "a" * 64})()

    def gc(self, in_use: Any) -> list[str]:
        return []


@dataclass
class FakeNetwork:
    log: list[str]
    plug_s: float = 0.1
    fail_plug: bool = False
    plugged: bool = False  # its veth is in place already: nothing left to plug
    plugging: threading.Event = field(default_factory=threading.Event)

    def attach(self, spec: ContainerSpec) -> Attached:
        self.log.append("prepare")
        return Attached("/run/netns/x", "10.210.1.2", {}, None if self.plugged else self._plug)

    def _plug(self) -> None:
        self.plugging.set()
        self.log.append("plug begins")
        time.sleep(self.plug_s)
        self.log.append("plug ends")
        if self.fail_plug:
            raise ShoalError("netlink: add veth: File exists")

    def detach(self, container_id: str) -> None:
        self.log.append("detach")


def start_one(tmp_path: Path, runtime: FakeRuntime, network: FakeNetwork) -> ContainersReconciler:
    reconciler = ContainersReconciler(runtime, FakeImages(), SecretFs(tmp_path), network)
    spec = ContainerSpec(id="web-1", image="r/web:1")
    reconciler.reconcile(NodeState(node="n1", subnet="10.210.1.0/24", containers=[spec]), [], {})
    return reconciler


def test_the_plug_overlaps_the_create_and_ends_before_the_start(tmp_path: Path) -> None:
    log: list[str] = []
    runtime, network = FakeRuntime(log), FakeNetwork(log)
    reconciler = start_one(tmp_path, runtime, network)
    assert runtime.started == ["web-1"] and reconciler.outcomes["web-1"].state == "running"
    # the create began while the plug (0.1 s) was still under way, and the start came after it
    assert log.index("prepare") < log.index("create") < log.index("plug ends") < log.index("start")
    # the plug began only once the bundle was ready: it never competes with its preparation
    assert log.index("bundle ready") < log.index("plug begins")


def test_a_failed_plug_fails_the_start_with_its_message(tmp_path: Path) -> None:
    log: list[str] = []
    runtime, network = FakeRuntime(log), FakeNetwork(log, fail_plug=True)
    reconciler = start_one(tmp_path, runtime, network)
    assert runtime.started == [] and "start" not in log
    outcome = reconciler.outcomes["web-1"]
    assert outcome.state == "failed" and "add veth: File exists" in outcome.message
    assert log[-1] == "detach"


def test_a_failed_create_waits_for_the_plug_before_cleaning_up(tmp_path: Path) -> None:
    log: list[str] = []
    runtime = FakeRuntime(log, create_s=0.0, fail_create=True)
    network = FakeNetwork(log, plug_s=0.2)
    reconciler = start_one(tmp_path, runtime, network)
    assert reconciler.outcomes["web-1"].message == "runc create: no such file"
    assert log.index("plug ends") < log.index("detach")


def test_background_passes_the_error_to_result_only() -> None:
    def boom() -> None:
        raise ShoalError("boom")

    failing = Background(boom, "t")
    failing.join()  # joining alone does not raise
    deferred = Background(lambda: 7, "t", start=False)
    deferred.join()  # never started: nothing to wait for
    deferred.start()
    assert deferred.result() == 7
    with pytest.raises(ShoalError, match="boom"):
        failing.result()
    assert Background(lambda: 7, "t").result() == 7


def test_a_network_already_plugged_in_starts_without_a_plug_thread(tmp_path: Path) -> None:
    log: list[str] = []
    runtime, network = FakeRuntime(log), FakeNetwork(log, plugged=True)
    before = threading.active_count()
    reconciler = start_one(tmp_path, runtime, network)
    assert runtime.started == ["web-1"] and reconciler.outcomes["web-1"].state == "running"
    assert "plug begins" not in log and runtime.before_start is None
    assert threading.active_count() == before

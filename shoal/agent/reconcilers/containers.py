"""Containers reconciler: the node's runc containers brought to the state's `containers`.

Second step of the agent's reconcile (images are pulled here too, for a start, on a thread of
their own with a deadline: see ``pulls``; the container is "pulling" meanwhile).
observe() lists the runtime's containers (those that outlived a previous agent are adopted:
a running container whose id is still desired is never restarted); plan() is pure; apply()
pulls, attaches the network, writes secrets onto tmpfs, starts, stops and deletes, and records
a one-line message per container for whatever failed (never raising out of the loop).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from shoal.agent import health
from shoal.agent.net.ipam import AddressTaken
from shoal.agent.net.nsthread import Background
from shoal.agent.reconcilers.pulls import Puller, Pulls
from shoal.agent.reconcilers.secretfs import SecretFs, secret_files
from shoal.errors import ShoalError, first_line
from shoal.model.container import ContainerSpec, HealthCheck, PullPolicy, host_network, pulls_always
from shoal.model.state import NodeState

log = logging.getLogger(__name__)

RETRY_MIN_S = 1.0
RETRY_MAX_S = 30.0
DEFAULT_GRACE_S = 10.0
HOST_NETWORK_FILES = ("/etc/resolv.conf", "/etc/hosts")  # the node's, read-only
LOST_AFTER_S = 5.0  # not running, no exit code, started this long ago: lost (the machine rebooted)


@dataclass(frozen=True)
class Seen:
    """A container as the runtime reports it, reduced to what planning needs."""

    id: str
    state: str  # "running", "created", "stopped"/"exited", ...
    pid: int | None = None
    exit_code: int | None = None
    started_at: float | None = None
    restarts: int = 0
    image_digest: str = ""  # the image its root is made of (kept in the runtime's record)
    healthcheck: HealthCheck | None = None  # the recorded spec's: the image's own when the file has none
    ip: str | None = None  # its address, held until it is gone (reported while it stops)


def health_check(spec: ContainerSpec, seen: Seen | None) -> HealthCheck | None:
    """The file's healthcheck, else (``image_healthcheck``) the image's, recorded at the start."""
    if spec.healthcheck is not None or not spec.image_healthcheck or seen is None:
        return spec.healthcheck
    return seen.healthcheck


@dataclass(frozen=True)
class ContainerPlan:
    start: tuple[ContainerSpec, ...] = ()
    remove: tuple[str, ...] = ()
    restart: tuple[ContainerSpec, ...] = ()  # unhealthy (or stuck in created): stop, delete, start

    @property
    def empty(self) -> bool:
        return not (self.start or self.remove or self.restart)


def plan_containers(
    desired: Iterable[ContainerSpec],
    observed: Mapping[str, Seen],
    unhealthy: Iterable[str] = (),
    waiting: Iterable[str] = (),
    now: float = 0.0,
) -> ContainerPlan:
    """Start what is missing, remove what is not desired, restart unhealthy replicas per policy.

    `waiting`: ids whose last start failed and whose retry time has not come yet. A container
    that exited is the runtime supervisor's (its restart policy), unless it was lost (no exit
    code at all, as after a reboot) or unhealthy.
    """
    wanted = {spec.id: spec for spec in desired}
    skip, sick = set(waiting), set(unhealthy)
    start = tuple(s for i, s in wanted.items() if i not in observed and i not in skip)
    remove = tuple(sorted(i for i in observed if i not in wanted))
    restart = tuple(
        s for i, s in wanted.items() if i in observed and _needs_restart(s, observed[i], i in sick, now)
    )
    return ContainerPlan(start, remove, restart)


def _needs_restart(spec: ContainerSpec, seen: Seen, unhealthy: bool, now: float) -> bool:
    if seen.state == "running":
        return unhealthy and spec.restart.name != "no"
    if seen.state == "created":
        return True  # a start interrupted by an agent crash
    lost = seen.exit_code is None and (seen.started_at or 0.0) < now - LOST_AFTER_S
    return lost and spec.restart.name != "no"


class ContainerRuntime(Protocol):
    """What this reconciler needs of `shoal.agent.runtime.Runtime` (see adapter in loop)."""

    def observe(self) -> dict[str, Seen]: ...
    def start(
        self,
        spec: ContainerSpec,
        image: Any,
        attached: Attached,
        secrets_dir: Path | None,
        *,
        before_create: Callable[[], None] | None = None,
        before_start: Callable[[], None] | None = None,
    ) -> None: ...
    def remove(self, container_id: str, grace_s: float) -> None: ...
    def stop(self, container_id: str, grace_s: float) -> None: ...
    def exec_probe(self, container_id: str, argv: list[str], timeout_s: float) -> tuple[int, str]: ...
    def supervise(self, force: bool = True, boot: bool = False) -> list[str]: ...


class Images(Puller, Protocol):
    """The image store as the reconciler uses it: pulls (`Puller`) and image GC."""

    def gc(self, in_use: Iterable[str]) -> list[str]: ...


@dataclass(frozen=True)
class Attached:
    """A container's network: the netns it joins, its address, files bound in (target -> host),
    and what is left to do before its process starts (the veth: run while runc creates it)."""

    netns: str | None = None
    ip: str | None = None
    files: Mapping[str, Path] = field(default_factory=dict)
    plug: Callable[[], None] | None = None


class Network(Protocol):
    def attach(self, spec: ContainerSpec) -> Attached: ...
    def detach(self, container_id: str) -> None: ...


@dataclass
class Outcome:
    """What the last start attempt of a container said; reported as its status message."""

    state: str  # "pulling", "failed", "running"
    message: str = ""
    ip: str | None = None
    image_digest: str = ""
    attempts: int = 0
    retry_at: float = 0.0


@dataclass
class ContainersReconciler:
    runtime: ContainerRuntime
    images: Images
    secrets: SecretFs
    network: Network | None = None
    clock: Callable[[], float] = time.time
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)  # health restarts by this agent
    digests: dict[str, str] = field(default_factory=dict)  # container id -> image digest in use
    graces: dict[str, float] = field(default_factory=dict)  # container id -> stop grace, from specs
    progress: Callable[[], None] | None = None  # called as each start begins (status: "pulling")
    stopped: Callable[[], None] | None = None  # called when a background stop ends (wake the loop)
    pulled: Callable[[], None] | None = None  # called when a background pull ends (wake the loop)
    pull_timeout_s: float = 900.0  # a pull still running after this fails the start
    pull_wait_s: float = 0.5  # a start waits this long for a new pull before leaving it "pulling"
    image_keep_s: float = 180.0  # unused images are kept this long: a redeploy or rollback finds them
    used_at: dict[str, float] = field(default_factory=dict)  # image digest -> when last in use
    stopping: dict[str, threading.Thread] = field(default_factory=dict)
    restarting: set[str] = field(default_factory=set)  # unhealthy ones stopped for a fresh start
    _seen: Mapping[str, Seen] = field(default_factory=dict)
    _next_retry: float = float("inf")
    _logins: int = 0  # fingerprint of the state's registry logins: a new one retries failed pulls now
    pulls: Pulls = field(init=False)

    def __post_init__(self) -> None:
        self.pulls = Pulls(self.images, self.pull_timeout_s, self.pull_wait_s, self._pull_ended)

    def _pull_ended(self) -> None:
        if self.pulled is not None:
            self.pulled()

    def reconcile(
        self, state: NodeState, unhealthy: Iterable[str] = (), observed: Mapping[str, Seen] | None = None
    ) -> ContainerPlan:
        """One pass; `observed`: the runtime as the caller just read it (else read here)."""
        self.graces.update({c.id: c.stop_grace_s for c in state.containers})
        observed = self.runtime.observe() if observed is None else observed
        now = self.clock()
        self._retry_on_new_logins(state, now)
        waiting = [i for i, o in self.outcomes.items() if o.state == "failed" and o.retry_at > now]
        plan = plan_containers(state.containers, observed, unhealthy, waiting, now)
        self._seen = observed
        self._next_retry = min((self.outcomes[i].retry_at for i in waiting), default=float("inf"))
        self.digests.update({i: seen.image_digest for i, seen in observed.items() if seen.image_digest})
        self.apply(plan, state)
        return plan

    def _retry_on_new_logins(self, state: NodeState, now: float) -> None:
        """A registry login came or changed: a start that failed (most likely on its pull) need not
        wait out its back-off."""
        logins = hash(tuple((a.host, a.username, a.password) for a in state.registry_auths))
        if logins == self._logins:
            return
        self._logins = logins
        for outcome in self.outcomes.values():
            if outcome.state == "failed":
                outcome.retry_at = min(outcome.retry_at, now)

    def retry_due(self) -> bool:
        """Whether a failed start's back-off ran out since the last pass (the loop then reconciles)."""
        return self.clock() >= self._next_retry

    def apply(self, plan: ContainerPlan, state: NodeState) -> None:
        removed = [cid for cid in plan.remove if self._remove_or_begin_stop(cid)]
        for spec in plan.restart:
            self._begin_restart(spec.id)
        for spec in plan.start:
            if spec.id not in self.stopping:
                self._start(spec, state)
        self._stamp_in_use(state)
        if removed or plan.restart or self._gc_due():
            self._gc()
        self.pulls.end_pass()
        self._forget_undesired(state)

    def _remove_or_begin_stop(self, container_id: str) -> bool:
        """Remove a container that has ended; stop a running one in the background.

        A stop may take the container's whole grace period: done inline it would hold up every
        start behind it (a replacement replica, a failover). The pass its end wakes removes it.
        """
        if container_id in self.stopping:
            return False
        seen = self._seen.get(container_id)
        if seen is None or seen.state not in ("running", "created"):
            self._remove(container_id)
            return True
        thread = threading.Thread(target=self._stop, args=(container_id,), name="stop", daemon=True)
        self.stopping[container_id] = thread
        thread.start()
        return False

    def _begin_restart(self, container_id: str) -> None:
        """Restart an unhealthy replica: its stop (and delete) runs in the background like a
        removal's; the pass its end wakes finds it missing and starts it afresh."""
        if container_id in self.stopping:
            return
        self.restarting.add(container_id)
        thread = threading.Thread(target=self._stop, args=(container_id, True), name="restart", daemon=True)
        self.stopping[container_id] = thread
        thread.start()

    def _stop(self, container_id: str, delete: bool = False) -> None:
        grace = self.graces.get(container_id, DEFAULT_GRACE_S)
        try:
            (self.runtime.remove if delete else self.runtime.stop)(container_id, grace)
        except (ShoalError, OSError) as exc:
            log.warning("stopping container %s: %s", container_id, exc)
        finally:
            self.stopping.pop(container_id, None)
            if self.stopped is not None:
                self.stopped()

    def _start(self, spec: ContainerSpec, state: NodeState) -> None:
        if spec.id in self.restarting:  # its old process is gone: its address and secrets next
            self.restarting.discard(spec.id)
            self._cleanup(spec.id)
            self.restarts[spec.id] = self.restarts.get(spec.id, 0) + 1
        outcome = self.outcomes.setdefault(spec.id, Outcome("pulling"))
        if outcome.state != "pulling" or not outcome.attempts:  # a new attempt, not its pull's wait
            outcome.attempts += 1
            outcome.state = "pulling"
            if self.progress is not None:
                self.progress()
        try:
            image = self._pulled_image(spec, state)
            if image is None:
                return  # still pulling: the pull's end wakes the pass that starts it
            self._start_once(spec, state, outcome, image)
        except AddressTaken as exc:
            self._wait_for_address(exc, state)
        except Exception as exc:  # any failure is this container's message, never the loop's end
            self._failed(spec, outcome, _one_line(exc))
        else:
            outcome.state, outcome.message = "running", ""

    def _pulled_image(self, spec: ContainerSpec, state: NodeState) -> Any | None:
        """The container's image once its (background) pull ended; its error is raised."""
        ref = _pinned(spec) if spec.image_digest else spec.image
        policy: PullPolicy = spec.pull_policy or ("always" if pulls_always(ref, None) else "missing")
        return self.pulls.poll(ref, state.insecure_registries, policy, state.registry_auths)

    def _start_once(self, spec: ContainerSpec, state: NodeState, outcome: Outcome, image: Any) -> None:
        values = secret_files(spec, state)
        outcome.image_digest = str(getattr(image, "digest", ""))
        attached = self._attach(spec)
        outcome.ip = attached.ip
        secrets_dir = self.secrets.write(spec.id, values)
        check = spec.healthcheck
        if check is None and spec.image_healthcheck:
            check = health.from_image(getattr(image, "config", {}))
        update = {"ip": attached.ip, "image_digest": outcome.image_digest, "healthcheck": check}
        recorded = spec.model_copy(update=update)
        self._start_plugging_in(recorded, image, attached, secrets_dir)
        self.digests[spec.id] = outcome.image_digest

    def _start_plugging_in(
        self, spec: ContainerSpec, image: Any, attached: Attached, secrets_dir: Path | None
    ) -> None:
        """The veth is plugged in while runc creates the container, from when its bundle is ready
        (before, the plug's Python would hold up the bundle's own for the GIL); the process starts
        once it is in."""
        if attached.plug is None:
            self.runtime.start(spec, image, attached, secrets_dir)
            return
        plugging = Background(attached.plug, f"plug:{spec.id}", start=False)
        try:
            self.runtime.start(
                spec, image, attached, secrets_dir, before_create=plugging.start, before_start=plugging.result
            )
        finally:
            plugging.join()  # a failed start's cleanup must not race a plug still running

    def _wait_for_address(self, exc: AddressTaken, state: NodeState) -> None:
        """The server reuses an address once the replica holding it is no longer desired; here that
        replica may still be in its stop grace: the start waits for the pass its end wakes. A holder
        that is gone already (a leaked allocation) gives its address up at once."""
        log.info("%s; the start waits", exc)
        held_by_live = exc.holder in self._seen or exc.holder in self.stopping
        if not held_by_live and exc.holder not in {c.id for c in state.containers}:
            self._cleanup(exc.holder)
            self._next_retry = self.clock()  # freed: the next tick starts it

    def _failed(self, spec: ContainerSpec, outcome: Outcome, message: str) -> None:
        log.warning("container %s: %s", spec.id, message)
        delay = min(RETRY_MAX_S, RETRY_MIN_S * 2 ** min(outcome.attempts - 1, 10))
        outcome.state, outcome.message, outcome.retry_at = "failed", message, self.clock() + delay
        self._next_retry = min(self._next_retry, outcome.retry_at)
        self._cleanup(spec.id)

    def _remove(self, container_id: str, forget: bool = True) -> None:
        try:
            self.runtime.remove(container_id, self.graces.get(container_id, DEFAULT_GRACE_S))
        except (ShoalError, OSError) as exc:
            log.warning("removing container %s: %s", container_id, exc)
            return
        self._cleanup(container_id)
        if forget:
            self.outcomes.pop(container_id, None)
            self.digests.pop(container_id, None)

    def _attach(self, spec: ContainerSpec) -> Attached:
        if host_network(spec):  # the node's network, and its names, as Docker does
            return Attached(files={p: Path(p) for p in HOST_NETWORK_FILES})
        return self.network.attach(spec) if self.network else Attached(ip=spec.ip)

    def _cleanup(self, container_id: str) -> None:
        if self.network is not None:
            try:
                self.network.detach(container_id)
            except (ShoalError, OSError) as exc:
                log.warning("detaching container %s: %s", container_id, exc)
        self.secrets.remove(container_id)

    def _stamp_in_use(self, state: NodeState) -> None:
        """Stamp the images in use now: each is kept `image_keep_s` after its last use."""
        in_use = set(self.digests.values()) | {c.image_digest for c in state.containers if c.image_digest}
        self.used_at.update(dict.fromkeys(in_use, self.clock()))

    def _gc_due(self) -> bool:
        now = self.clock()
        return any(now - t >= self.image_keep_s for t in self.used_at.values())

    def _gc(self) -> None:
        if self.pulls.running():
            return  # an image pulled now is in no container yet: collect once pulls are quiet
        now = self.clock()
        self.used_at = {d: t for d, t in self.used_at.items() if now - t < self.image_keep_s}
        try:
            removed = self.images.gc([*self.used_at, *self.pulls.held()])
        except (ShoalError, OSError) as exc:
            log.warning("image gc: %s", exc)
            return
        if removed:
            log.info("removed unused images %s", ", ".join(removed))

    def _forget_undesired(self, state: NodeState) -> None:
        wanted = {c.id for c in state.containers}
        for container_id in [i for i in self.outcomes if i not in wanted]:
            self.outcomes.pop(container_id, None)
        for container_id in [i for i in self.restarts if i not in wanted]:
            self.restarts.pop(container_id, None)


def _one_line(exc: Exception) -> str:
    line = first_line(str(exc))
    return line if isinstance(exc, ShoalError) else f"{type(exc).__name__}: {line}".rstrip(": ")


def _pinned(spec: ContainerSpec) -> str:
    """The reference pinned to the resolved digest: `repo@sha256:...`."""
    if "@" in spec.image:
        return spec.image
    name = spec.image
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    return f"{name}@{spec.image_digest}"

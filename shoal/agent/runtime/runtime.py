"""The container runtime: ContainerSpec + image → a runc container that outlives the agent.

Called by the agent's container reconciler. Each container gets a bundle dir (config.json from
render.oci, an overlay root, its record), a conmon monitor (stdio → timestamped log, exit code →
exit file) and a runc container under this agent's ``--root`` and cgroup parent. Nothing lives
only in memory: a new Runtime in a new process lists and adopts what an earlier one started.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from shoal.agent.render import oci
from shoal.agent.render.oci_security import SecurityInputs
from shoal.agent.runtime import bundle as files_
from shoal.agent.runtime import conmon, devices, logs, overlay, procs, records
from shoal.agent.runtime.logs import LogLine
from shoal.agent.runtime.policy import Exit, decide
from shoal.agent.runtime.records import Record
from shoal.agent.runtime.volumes import ensure_volume
from shoal.agent.sys.runc import EXEC_OUTPUT_MAX, Runc, RuncState
from shoal.errors import ConfigError, Conflict, NotFound, ShoalError
from shoal.model.container import ContainerSpec
from shoal.model.exec_wire import ExecResult
from shoal.model.policy import Grant, forbidden_paths, normalise
from shoal.pids import wait_gone

HISTORY = 100  # exits kept per container (more if on-failure:N needs them to count)
LOST_EXIT = 255  # exit code recorded when the container's end was not seen (as Docker does)
VALID_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


@dataclass(frozen=True)
class RuntimeConfig:
    """Every path and name the runtime uses; distinct per agent so agents can share a machine."""

    state_dir: Path  # runc --root (state_dir/runc) and conmon exit files (state_dir/exits)
    bundles_dir: Path
    logs_dir: Path
    volumes_dir: Path
    cgroup_parent: str = "/shoal"
    runc_binary: str = "runc"
    conmon_binary: str = "conmon"
    log_max_bytes: int = 10 << 20
    log_keep: int = 3
    init_binary: str = "/usr/bin/tini-static"  # bound in for Compose `init: true` (static: any image)
    forbidden_binds: tuple[str, ...] = ()  # host paths no bind may reach (the agent's data dir...)
    pids_limit: int = oci.DEFAULT_PIDS_LIMIT  # per container, unless its deploy sets one
    tmpfs_max_bytes: int = oci.DEFAULT_TMPFS_MAX_BYTES  # every tmpfs and /dev/shm at most this


@dataclass(frozen=True)
class ObservedContainer:
    id: str
    state: str  # created, running, exited, stopped (by a person)
    pid: int | None
    exit_code: int | None
    started_at: float | None
    finished_at: float | None
    restarts: int
    spec: ContainerSpec
    gave_up: bool = False
    lost: bool = False  # its end was not seen: monitor and runc state gone (the machine rebooted)


@dataclass
class SupervisorAction:
    id: str
    action: str  # restart, wait, give_up, rotate, error
    detail: str = ""


Actions = list[SupervisorAction]
Observed = list[ObservedContainer]
Lines = list[LogLine]


def check_binds(spec: ContainerSpec, forbidden: tuple[str, ...]) -> None:
    """Refuse a bind of a forbidden host path whatever the server sent (a hostile server, an old
    revision): checked on the string as written and as the host resolves it (symlinks)."""
    guard = Grant(forbidden=forbidden)
    for mount in spec.mounts:
        if mount.kind != "bind":
            continue
        for path in (mount.source, os.path.realpath(mount.source)):
            bad = guard.forbids(normalise(path))
            if bad is not None:
                raise ConfigError(
                    f"bind of {mount.source} for {mount.target} refused by this node: exposes {bad}"
                )


class Runtime:
    """Containers of one agent, over runc and conmon."""

    def __init__(self, config: RuntimeConfig) -> None:
        self.config = config
        # conmon wants the runtime as an absolute path
        self.runc = Runc(shutil.which(config.runc_binary) or config.runc_binary, config.state_dir / "runc")
        self.exit_dir = config.state_dir / "exits"
        self.forbidden = forbidden_paths(
            *config.forbidden_binds,
            *(str(d) for d in (config.state_dir, config.bundles_dir, config.logs_dir, config.volumes_dir)),
            *(shutil.which(b) or "" for b in (config.runc_binary, config.conmon_binary)),
        )
        for d in (
            config.state_dir / "runc",
            self.exit_dir,
            config.bundles_dir,
            config.logs_dir,
            config.volumes_dir,
        ):
            d.mkdir(parents=True, exist_ok=True)

    # paths -----------------------------------------------------------------------------------
    def bundle(self, container_id: str) -> Path:
        return self.config.bundles_dir / container_id

    def log_file(self, container_id: str) -> Path:
        return self.config.logs_dir / f"{container_id}.log"

    def exit_file(self, container_id: str) -> Path:
        return self.exit_dir / container_id

    # lifecycle -------------------------------------------------------------------------------
    def create_and_start(
        self,
        spec: ContainerSpec,
        image_config: Mapping[str, Any],
        lower_dirs: Sequence[Path],
        netns_path: str | None = None,
        *,
        files: Mapping[str, Path] | None = None,
        secrets_dir: Path | None = None,
        before_create: Callable[[], None] | None = None,
        before_start: Callable[[], None] | None = None,
    ) -> int:
        """Mounts the root, writes config.json, starts the container; returns its pid.

        `before_create` runs once the bundle is ready, just before runc creates the container
        (e.g. begins plugging its network in on another thread). `before_start` runs between
        runc's create and start: the container's namespaces exist, its process has not begun
        (e.g. waits for its network to be plugged in).
        """
        if not VALID_ID.fullmatch(spec.id):
            raise ConfigError(f"container id {spec.id!r}: use letters, digits, '.', '_' and '-' (≤ 128)")
        check_binds(spec, self.forbidden)
        bundle = self.bundle(spec.id)
        if bundle.exists():
            raise Conflict(f"container {spec.id} already exists")
        bundle.mkdir(parents=True)
        try:
            rootfs = overlay.mount_root(lower_dirs, bundle)
            inputs = self._inputs(spec, rootfs, netns_path, files or {}, secrets_dir)
            inputs = replace(inputs, configs=files_.write_configs(spec, bundle / "configs"))
            files_.write_config_json(bundle, oci.render_config(spec, image_config, inputs))
            record = Record(spec=spec, lower_dirs=[str(p) for p in lower_dirs])
            records.save(bundle, record)  # before the start: a crash mid-start leaves it findable
            return self._start(spec.id, record, before_create, before_start)
        except BaseException:
            self._remove(spec.id)
            raise

    def _inputs(
        self,
        spec: ContainerSpec,
        rootfs: Path,
        netns_path: str | None,
        files: Mapping[str, Path],
        secrets_dir: Path | None,
    ) -> oci.BundleInputs:
        volumes = {
            m.source: ensure_volume(self.config.volumes_dir, spec.project, m)
            for m in spec.mounts
            if m.kind == "volume"
        }
        return oci.BundleInputs(
            rootfs=str(rootfs),
            cgroups_path=oci.cgroups_path(self.config.cgroup_parent, spec.id),
            netns_path=netns_path,
            passwd=overlay.read_image_file(rootfs, "etc/passwd"),
            group=overlay.read_image_file(rootfs, "etc/group"),
            volumes={k: str(v) for k, v in volumes.items()},
            secrets_dir=str(secrets_dir) if secrets_dir else None,
            files={k: str(v) for k, v in files.items()},
            init_path=shutil.which(self.config.init_binary) if spec.init else None,
            security=self._security_inputs(spec),
            pids_limit=self.config.pids_limit,
            tmpfs_max_bytes=self.config.tmpfs_max_bytes,
        )

    @staticmethod
    def _security_inputs(spec: ContainerSpec) -> SecurityInputs:
        sec = spec.security
        return SecurityInputs(
            devices=devices.granted(sec.devices),
            host_devices=devices.all_devices() if sec.privileged else (),
            host_capabilities=devices.host_capabilities() if sec.privileged or sec.cap_add else (),
        )

    def _start(
        self,
        container_id: str,
        record: Record,
        before_create: Callable[[], None] | None = None,
        before_start: Callable[[], None] | None = None,
    ) -> int:
        """conmon (runc create) then runc start; the record notes the start time."""
        bundle = self.bundle(container_id)
        overlay.mount_root([Path(p) for p in record.lower_dirs], bundle)
        self.exit_file(container_id).unlink(missing_ok=True)
        paths = conmon.ConmonPaths(bundle, self.log_file(container_id), self.exit_dir, Path(self.runc.root))
        argv = conmon.conmon_args(self.config.conmon_binary, self.runc.binary, container_id, paths)
        if before_create is not None:
            before_create()
        pid = conmon.launch(argv, container_id, bundle / "conmon.err")
        if before_start is not None:
            before_start()
        # Stamped before the process is let go: it may exit before start_fast returns.
        record.started_at, record.next_restart_at = conmon.exit_clock(), None
        self.runc.start_fast(container_id)
        records.save(bundle, record)
        return pid

    def stop(self, container_id: str, grace_s: float) -> None:
        """The stop signal (Compose stop_signal, SIGTERM by default), up to ``grace_s`` to exit,
        then SIGKILL; the restart policy leaves it stopped."""
        record = self._record(container_id)
        record.stopped_by_user = True
        records.save(self.bundle(container_id), record)
        self._signal_and_wait(container_id, files_.stop_signal(record.spec), grace_s)
        self._signal_and_wait(container_id, "KILL", 10.0)

    def _signal_and_wait(self, container_id: str, sig: str, wait_s: float) -> None:
        state = self._state(container_id)
        if state is None or state.status not in ("running", "created", "paused"):
            return
        try:
            self.runc.kill(container_id, sig, all_processes=sig == "KILL")
        except NotFound:
            return
        wait_gone(state.pid, wait_s)

    def delete(self, container_id: str) -> None:
        """Kills what is left, runc delete, unmounts the root, removes bundle, exit file and logs."""
        if not self.bundle(container_id).exists():
            raise NotFound(f"container {container_id} does not exist")
        self._signal_and_wait(container_id, "KILL", 10.0)
        self._remove(container_id)

    def _remove(self, container_id: str) -> None:
        with contextlib.suppress(NotFound):
            self.runc.delete(container_id, force=True)
        bundle = self.bundle(container_id)
        keep = self._log_keep(container_id)
        wait_gone(procs.read_pid(bundle / "conmon.pid"), 5.0)
        overlay.unmount_root(bundle)
        shutil.rmtree(bundle, ignore_errors=True)
        self.exit_file(container_id).unlink(missing_ok=True)
        for path in logs.log_files(self.log_file(container_id), keep):
            path.unlink(missing_ok=True)

    def _log_limits(self, spec: ContainerSpec) -> tuple[int, int]:
        return files_.log_limits(spec, self.config.log_max_bytes, self.config.log_keep)

    def _log_keep(self, container_id: str) -> int:
        record = records.load(self.bundle(container_id))
        return self._log_limits(record.spec)[1] if record else self.config.log_keep

    # observation -----------------------------------------------------------------------------
    def list(self) -> Observed:
        """Every container this agent made, as runc, conmon's exit files and the records say."""
        states = {s.id: s for s in self.runc.list()}
        out = []
        for cid, record in self._records():
            out.append(self._observe(cid, record, states.get(cid)))
        return out

    def get(self, container_id: str) -> ObservedContainer:
        return self._observe(container_id, self._record(container_id), self._state(container_id))

    def _observe(self, cid: str, record: Record, state: RuncState | None) -> ObservedContainer:
        exit_code, finished = self._exit(cid)
        lost = exit_code is None and self._monitor_lost(cid, state)
        if lost:
            exit_code = LOST_EXIT
        status = state.status if state else "stopped"
        running = status in ("running", "created", "paused")
        if running:
            exit_code, finished, lost = None, None, False
            label = "running" if status == "paused" else status
        else:
            label = "stopped" if record.stopped_by_user else "exited"
        return ObservedContainer(
            id=cid, state=label, pid=state.pid if state and running else None, exit_code=exit_code,
            started_at=record.started_at or None, finished_at=finished, restarts=record.restarts,
            spec=record.spec, gave_up=record.gave_up, lost=lost,
        )  # fmt: skip

    def _monitor_lost(self, container_id: str, state: RuncState | None) -> bool:
        """No exit file will ever come: runc forgot the container (a reboot wiped its state
        dir) or it stopped while its conmon is gone."""
        if state is not None and state.status != "stopped":
            return False
        return not procs.alive_as(procs.read_pid(self.bundle(container_id) / "conmon.pid"), "conmon")

    def _exit(self, container_id: str) -> tuple[int | None, float | None]:
        path = self.exit_file(container_id)
        try:
            return int(path.read_text().strip()), path.stat().st_mtime
        except (FileNotFoundError, ValueError):
            return None, None

    def _records(self) -> Iterator[tuple[str, Record]]:
        for bundle in sorted(self.config.bundles_dir.iterdir()):
            record = records.load(bundle)
            if record is not None:
                yield bundle.name, record

    def _record(self, container_id: str) -> Record:
        record = records.load(self.bundle(container_id))
        if record is None:
            raise NotFound(f"container {container_id} does not exist")
        return record

    def _state(self, container_id: str) -> RuncState | None:
        try:
            return self.runc.state(container_id)
        except NotFound:
            return None

    def exec(
        self, container_id: str, argv: Sequence[str], timeout: float = 30.0, max_output: int = EXEC_OUTPUT_MAX
    ) -> ExecResult:
        """Runs argv inside the running container: its exit code and combined output (capped)."""
        self._record(container_id)
        return self.runc.exec(container_id, argv, timeout, max_output)

    def logs(self, container_id: str, since: float | None = None, tail: int | None = None) -> Lines:
        keep = self._log_keep(container_id)
        return logs.read_lines(self.log_file(container_id), keep, since, tail)

    def follow_logs(
        self,
        container_id: str,
        since: float | None = None,
        tail: int | None = None,
        idle_s: float | None = None,
    ) -> Iterator[LogLine | None]:
        """Stored lines, then new ones until the container has stopped; None after each `idle_s`
        without a line when given (logs.follow)."""

        def ended() -> bool:
            state = self._state(container_id)
            return state is None or state.status == "stopped"

        return logs.follow(
            self.log_file(container_id),
            self._log_keep(container_id),
            since=since,
            tail=tail,
            stop=ended,
            idle_s=idle_s,
        )

    # supervision -----------------------------------------------------------------------------
    def supervise(self, now: float | None = None, boot: bool = False, keep_lost: bool = False) -> Actions:
        """One tick: record exits, apply restart policies, rotate logs. Called by the agent loop;
        ``boot``: ``always`` then restarts even what a person stopped. ``keep_lost``: a container
        whose end was not seen is left to the caller (the agent starts it afresh: after a reboot
        its network namespace and secrets are gone, so an in-place restart could only fail)."""
        now = time.time() if now is None else now
        actions: Actions = []
        for container in self.list():
            actions += self._rotate(container)
            if container.lost and keep_lost:
                continue
            if container.state in ("exited", "stopped") and container.exit_code is not None:
                try:
                    actions += self._apply_policy(container, now, boot)
                except ShoalError as exc:  # one container's failed restart must not stop the tick
                    actions.append(SupervisorAction(container.id, "error", str(exc)))
        return actions

    def _rotate(self, container: ObservedContainer) -> Actions:
        path = self.log_file(container.id)
        max_bytes, keep = self._log_limits(container.spec)
        if not logs.rotate(path, max_bytes, keep):
            return []
        if container.state in ("running", "created"):
            # conmon may be gone already: the next start opens a fresh log then
            with contextlib.suppress(OSError):
                conmon.reopen_log(self.bundle(container.id))
        return [SupervisorAction(container.id, "rotate")]

    def _apply_policy(self, container: ObservedContainer, now: float, boot: bool) -> Actions:
        cid = container.id
        record = self._record(cid)
        if record.gave_up:
            return []
        if not record.exit_recorded():
            finished = container.finished_at or now
            record.exits.append(Exit(container.exit_code or 0, record.started_at, finished))
            del record.exits[: -max(HISTORY, record.spec.restart.max_retries + 1)]
        decision = decide(record.spec.restart, record.exits, now, record.stopped_by_user, boot)
        if decision.action == "give_up" and record.stopped_by_user:
            records.save(self.bundle(cid), record)
            return []  # stays stopped, but ``always`` may bring it back when the agent boots
        if decision.action == "restart":
            self._restart(cid, record)
        else:
            record.gave_up = decision.action == "give_up"
            record.next_restart_at = decision.at if decision.action == "wait" else None
            records.save(self.bundle(cid), record)
        return [SupervisorAction(cid, decision.action, decision.reason)]

    def _restart(self, container_id: str, record: Record) -> None:
        with contextlib.suppress(NotFound):
            self.runc.delete(container_id, force=True)
        record.restarts += 1
        record.stopped_by_user = False
        self._start(container_id, record)

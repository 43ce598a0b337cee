"""`shoal deploy -f compose.yaml`: send the file, then watch every service roll out.

The server validates the file (a 400 names the key and its line); the command then polls each
service until its replicas at the new revision are all running and healthy (exit 0), one fails
(exit 1 with the reason the agent reported), or the timeout passes. `--detach` returns at once.
Each event the cluster writes (a replica running, healthy, failed) wakes the poll at once; the
poll every POLL_S stays, for what makes no event and for a stream that breaks. Done means served:
every node up has applied a state that lists the new replicas (DNS, ingress); a node that does
not within SERVE_WAIT_S of the replicas being healthy is named in a warning, not waited for.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from shoal.cli.common import client, output_option, say, target, wants_json
from shoal.cli.progress import Progress, progress
from shoal.client import ApiError, Client
from shoal.errors import ConfigError, ShoalError
from shoal.model.compose_build import project_name_fault
from shoal.model.compose_source import Disk, Options, Prepared, prepare
from shoal.model.compose_types import ComposeError

if TYPE_CHECKING:  # rich when a table is drawn, pydantic's models with the answer: a faster start
    from rich.table import Table

    from shoal.client.receipt import DeployedService, DeployResult

DEFAULT_FILES = ["compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"]
POLL_S = 0.25
# once every replica is healthy, how long to wait for every node up to serve them (DNS, ingress)
SERVE_WAIT_S = 15.0
SERVE_POLL_S = 0.05  # meanwhile (a few tenths of a second, typically): nodes' reports wake no event
Show = Callable[[Sequence[Progress]], None]


class DeployFailed(ShoalError):
    """A replica failed, went unhealthy, or the rollout did not finish in time."""


def compose_path(given: str | None, cwd: Path) -> str:
    """The file to deploy: -f, else the first Compose default name present in `cwd`."""
    if given:
        return given
    for name in DEFAULT_FILES:
        if (cwd / name).is_file():
            return str(cwd / name)
    raise ConfigError(f"no compose file: pass -f FILE (looked for {', '.join(DEFAULT_FILES)})")


def read_compose(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {getattr(exc, 'strerror', None) or exc}") from exc


def send(api: Client, path: str, ready: Prepared, dry_run: bool = False, prune: bool = False) -> DeployResult:
    """POST the file; a rejection (400) names the file as well as the key and line."""
    try:
        return api.deploy(
            ready.text, ready.project, dry_run, prune=prune, files=ready.files, keep=ready.inactive
        )
    except ApiError as exc:
        if exc.status == 400:
            raise ConfigError(f"{path}: {exc}") from exc
        raise


def poll_once(api: Client, services: Sequence[DeployedService]) -> list[Progress]:
    return [progress(api.service(s.name), s.revision) for s in services]


def verdict(states: Sequence[Progress]) -> bool:
    """True when every service is done; raises DeployFailed on the first failure."""
    for state in states:
        if state.failure:
            raise DeployFailed(state.failure)
    return all(s.done for s in states)


def served_late(states: Sequence[Progress], ready_since: float | None, now: float) -> bool:
    """Whether to stop waiting for nodes to serve replicas that are all ready: a node that
    does not apply its state within SERVE_WAIT_S (cut off, not yet declared down) is named, not
    waited for."""
    return ready_since is not None and now - ready_since >= SERVE_WAIT_S and all(s.ready_done for s in states)


def not_served(states: Sequence[Progress]) -> str:
    """The warning for a deploy that returns before every node serves it."""
    notes = "; ".join(f"{s.service}{s.serving_note()}" for s in states if not s.served)
    return f"warning: healthy, but not yet served everywhere after {SERVE_WAIT_S:g}s: {notes}"


def wait(
    api: Client,
    services: Sequence[DeployedService],
    timeout: float,
    show: Show,
    pause: Callable[[float], object] = time.sleep,
) -> list[Progress]:
    """Poll until done; `pause(s)` between polls (EventWake.wait returns early on news)."""
    deadline = time.monotonic() + timeout
    ready_since: float | None = None
    while True:
        states = poll_once(api, services)
        show(states)
        if verdict(states):
            return states
        now = time.monotonic()
        ready_since = ready_since or (now if all(s.ready_done for s in states) else None)
        if served_late(states, ready_since, now):
            click.echo(not_served(states), err=True)
            return states
        if now >= deadline:
            pending = "; ".join(s.line() for s in states if not s.done)
            raise DeployFailed(f"not healthy after {timeout:g}s: {pending}")
        poll = SERVE_POLL_S if ready_since is not None else POLL_S  # an applied state makes no event
        pause(min(poll, max(deadline - time.monotonic(), 0)))


class EventWake:
    """Set by every event after `since`, read from the API's event stream on a thread of its own
    (with its own client: one connection per thread). A stream that fails only stops waking."""

    def __init__(self, stream: Client, since: int) -> None:
        self.stream = stream
        self.news = threading.Event()
        self.thread = threading.Thread(target=self._read, args=(since,), name="events", daemon=True)
        self.thread.start()

    def _read(self, since: int) -> None:
        try:
            for _ in self.stream.stream_events(since=since):  # what happened is the poll's to read
                self.news.set()
        except Exception:  # closed under it, or it broke: the poll carries on
            return

    def wait(self, timeout: float) -> bool:
        """Until news or `timeout`; True on news. Cleared before the poll that follows, so news
        arriving during that poll wakes the next wait."""
        woke = self.news.wait(timeout)
        self.news.clear()
        return woke

    def close(self) -> None:
        self.stream.close()  # ends the stream's read too (see Transport.close)


def event_wake(api: Client) -> EventWake | None:
    """A wake-up from the events after the latest one now (those before it are in the first
    poll); None when events cannot be read, which leaves the plain poll."""
    try:
        since = max((e.id for e in api.events(limit=1)), default=0)
    except ShoalError:
        return None
    goal = target()
    return EventWake(Client(goal.server, goal.token, goal.ca), since)


def progress_table(states: Sequence[Progress]) -> Table:
    from shoal.cli.render import make_table  # noqa: PLC0415

    rows = [
        [
            s.service,
            s.revision,
            f"{s.pulled}/{s.desired}",
            f"{s.started}/{s.desired}",
            f"{s.ready}/{s.desired}",
            "done" if s.done else "...",
        ]
        for s in states
    ]
    return make_table(["service", "revision", "pulled", "started", "healthy", ""], rows)


class LineShow:
    """Progress for a pipe or a log: one line per service whenever its counts change."""

    def __init__(self) -> None:
        self.last: dict[str, str] = {}

    def __call__(self, states: Sequence[Progress]) -> None:
        for state in states:
            if self.last.get(state.service) != state.line():
                self.last[state.service] = state.line()
                click.echo(state.line(), err=True)


def watch(api: Client, services: Sequence[DeployedService], timeout: float) -> list[Progress]:
    """Wait with a live table on a terminal, progress lines otherwise (both on stderr)."""
    from rich.live import Live  # noqa: PLC0415

    from shoal.cli.render import console  # noqa: PLC0415

    err = console(stderr=True)
    wake = event_wake(api)
    pause = wake.wait if wake is not None else time.sleep
    try:
        if not err.is_terminal:
            return wait(api, services, timeout, LineShow(), pause)
        with Live(console=err, refresh_per_second=8, transient=False) as live:
            return wait(api, services, timeout, lambda states: live.update(progress_table(states)), pause)
    finally:
        if wake is not None:
            wake.close()


def watch_or_stop(api: Client, services: Sequence[DeployedService], timeout: float) -> list[Progress]:
    """Watch; Ctrl-C stops watching only (exit 130): the rollout goes on in the cluster."""
    try:
        return watch(api, services, timeout)
    except KeyboardInterrupt:
        click.echo("stopped watching; the rollout goes on (see `shoal service ls`)", err=True)
        click.get_current_context().exit(130)
        raise  # not reached: exit raises


def local_disk(path: str) -> tuple[Disk, str]:
    """Reads relative to the Compose file's directory (`~` is the user's home); its name."""
    folder = Path.cwd() if path == "-" else Path(path).resolve().parent

    def where(rel: str) -> Path:
        return Path(rel).expanduser() if rel.startswith("~") else folder / rel

    def read(rel: str) -> bytes | None:
        try:
            return where(rel).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        except OSError as exc:
            raise ConfigError(f"{rel}: {exc.strerror or exc}") from exc

    return Disk(read=read, is_dir=lambda rel: where(rel).is_dir()), folder.name


def prepare_file(path: str, project: str | None, env_file: str | None, profiles: Sequence[str]) -> Prepared:
    """Interpolate, read what the file names and check it here, with the file's own lines."""
    if project and (fault := project_name_fault(project)):
        raise ConfigError(f"-p/--project: {fault}")
    disk, folder = local_disk(path)
    options = Options(
        shell=dict(os.environ), project=project, env_file=env_file, profiles=profiles, dir_name=folder
    )
    try:
        ready = prepare(read_compose(path), disk, options)
    except ComposeError as exc:
        raise ConfigError(f"{path}: " + "\n".join(exc.errors)) from exc
    for warning in ready.warnings:
        click.echo(f"warning: {warning}", err=True)
    return ready


def change_lines(result: DeployResult) -> list[str]:
    """What a dry run would do, one line per service (and one per changed key under it)."""
    lines = []
    for change in result.changes:
        lines.append(f"{change.name}: {change.change}")
        lines += [f"    {key}" for key in change.keys]
    return lines


def qualified(result: DeployResult) -> list[DeployedService]:
    """The deployed services as `<project>.<service>`: a short name may be in other projects too."""
    return [dataclasses.replace(s, name=f"{result.project}.{s.name}") for s in result.services]


def summary(result: DeployResult) -> str:
    services = ", ".join(f"{s.name} (revision {s.revision})" for s in result.services) or "no services"
    return f"project {result.project}: {services}"


@click.command("deploy")
@click.option("--file", "-f", "file", help="the Compose file ('-' for stdin; default ./compose.yaml)")
@click.option(
    "--project",
    "-p",
    help="the project (default: COMPOSE_PROJECT_NAME, then the file's name:, then its directory's name)",
)
@click.option("--env-file", help="variables for interpolation instead of the file's .env")
@click.option("--profile", "profiles", multiple=True, help="enable the services of this profile")
@click.option(
    "--prune", "--remove-orphans", is_flag=True, help="remove the project's services not in the file"
)
@click.option("--detach", "-d", is_flag=True, help="return once the server has accepted the file")
@click.option("--dry-run", is_flag=True, help="say what would change for each service; change nothing")
@click.option(
    "--timeout", type=click.FloatRange(min=1), default=600.0, show_default=True, help="seconds to wait"
)
@output_option
def deploy(  # noqa: PLR0917 (click passes every option)
    file: str | None,
    project: str | None,
    env_file: str | None,
    profiles: tuple[str, ...],
    prune: bool,
    detach: bool,
    dry_run: bool,
    timeout: float,
) -> None:
    """Deploy a Compose file and wait until every service is healthy (or one fails)."""
    path = compose_path(file, Path.cwd())
    ready = prepare_file(path, project, env_file, profiles)
    api = client()
    result = send(api, path, ready, dry_run, prune)
    if dry_run:
        say(
            "\n".join([f"{path} is valid: project {result.project}", *change_lines(result)]), result.to_wire()
        )
        return
    if result.orphans and not result.pruned:
        click.echo(f"not in the file any more (remove with --prune): {', '.join(result.orphans)}", err=True)
    states = [] if detach else watch_or_stop(api, qualified(result), timeout)
    if wants_json():
        lagging = sorted({node for s in states for node in s.lagging})
        served = not detach and all(s.served and s.serving_known for s in states)
        say("", {**result.to_wire(), "healthy": not detach, "served": served, "lagging": lagging})
        return
    click.echo(("accepted " if detach else "deployed ") + summary(result))

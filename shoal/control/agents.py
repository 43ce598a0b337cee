"""The server's calls to agents over the overlay: container logs and exec (control).

Each agent serves its endpoints on its overlay address (the first address of its node subnet),
so the server reaches every node this way, NAT'd ones too, through the WireGuard mesh.
Authenticated with the per-node agent secret issued at join. A followed log is read by one
thread per replica; it ends, closing its connections to the agents, as soon as its reader leaves
(`followed_logs`' `gone`) or its deadline passes; agents send an empty line every few seconds
of quiet (`?keepalive=`), so a reader thread never waits long to notice.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from shoal.errors import ShoalError
from shoal.model.addressing import overlay_ip

CONNECT_TIMEOUT_S = 5.0
KEEPALIVE_S = 2.0  # what the server asks agents for: an empty line after this long without one
CHECK_S = 1.0  # how soon a followed log notices its reader left


class AgentUnreachable(ShoalError):
    """An agent did not answer over the overlay."""


@dataclass(frozen=True)
class Replica:
    """One replica's container and the agent that runs it."""

    replica: int
    container_id: str
    node: str
    subnet: str
    secret: str


class AgentCalls:
    def __init__(self, port: int) -> None:
        self.port = port

    def _client(self, replica: Replica, read_timeout: float | None) -> httpx.Client:
        timeout = httpx.Timeout(CONNECT_TIMEOUT_S, read=read_timeout)
        return httpx.Client(
            base_url=f"http://{overlay_ip(replica.subnet)}:{self.port}",
            headers={"Authorization": f"Bearer {replica.secret}"},
            timeout=timeout,
        )

    def metrics(self, node: str, subnet: str, secret: str) -> bytes:
        """The agent's own Prometheus metrics (`GET /metrics` on its overlay address)."""
        url = f"http://{overlay_ip(subnet)}:{self.port}/metrics"
        headers = {"Authorization": f"Bearer {secret}"}
        try:
            response = httpx.get(url, headers=headers, timeout=httpx.Timeout(CONNECT_TIMEOUT_S, read=10.0))
        except httpx.TransportError as exc:
            raise AgentUnreachable(f"node {node}: agent unreachable: {exc}") from exc
        if response.status_code != 200:
            raise AgentUnreachable(f"node {node}: agent answered {response.status_code} for its metrics")
        return response.content

    def exec(self, replica: Replica, cmd: Sequence[str], stdin_b64: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"cmd": list(cmd)}
        if stdin_b64:
            body["stdin_b64"] = stdin_b64
        with self._client(replica, 120.0) as client:
            try:
                response = client.post(f"/agent/v1/containers/{replica.container_id}/exec", json=body)
            except httpx.TransportError as exc:
                raise AgentUnreachable(f"node {replica.node}: agent unreachable: {exc}") from exc
        return _json_or_raise(replica, response)

    def log_lines(self, replica: Replica, follow: bool, since: str | None, tail: int | None) -> Iterator[str]:
        """The container's lines; when following, also the agent's empty keepalive lines."""
        params: dict[str, Any] = {"follow": "1" if follow else "0"}
        if follow:
            params["keepalive"] = KEEPALIVE_S
        if since:
            params["since"] = since
        if tail is not None:
            params["tail"] = tail
        path = f"/agent/v1/containers/{replica.container_id}/logs"
        with self._client(replica, 3 * KEEPALIVE_S if follow else 30.0) as client:
            try:
                with client.stream("GET", path, params=params) as response:
                    if response.status_code != 200:
                        response.read()
                        _json_or_raise(replica, response)
                    yield from response.iter_lines()
            except httpx.TransportError as exc:
                raise AgentUnreachable(f"node {replica.node}: agent unreachable: {exc}") from exc


def _json_or_raise(replica: Replica, response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code >= 400:
        message = body.get("error", f"HTTP {response.status_code}") if isinstance(body, dict) else ""
        raise ShoalError(f"node {replica.node}: {message}")
    return body if isinstance(body, dict) else {}


def merged_logs(
    calls: AgentCalls, replicas: Sequence[Replica], since: str | None, tail: int | None
) -> list[str]:
    """Every replica's lines, prefixed `<replica>| `, in time order (lines start with a timestamp)."""
    lines: list[tuple[str, str]] = []
    for replica in replicas:
        try:
            lines += [
                (line, f"{replica.replica}| {line}") for line in calls.log_lines(replica, False, since, tail)
            ]
        except ShoalError as exc:
            lines.append(("", f"{replica.replica}| [shoal] {exc}"))
    return [text for _, text in sorted(lines, key=lambda pair: pair[0])]


def followed_logs(
    calls: AgentCalls,
    replicas: Sequence[Replica],
    since: str | None,
    tail: int | None,
    *,
    gone: Callable[[], bool],
    deadline_s: float,
) -> Iterator[str]:
    """The replicas' lines as they come, one reader thread per replica feeding one queue, until
    every replica's log ended, `gone()` (the reader left) or the deadline; then every reader
    thread ends within a keepalive and closes its connection to its agent."""
    lines: queue.Queue[str | None] = queue.Queue(maxsize=1000)
    stop = threading.Event()
    for replica in replicas:
        read = _Reader(calls, replica, since, tail, lines, stop)
        threading.Thread(target=read.run, name=f"logs-{replica.node}", daemon=True).start()
    deadline = time.monotonic() + deadline_s
    open_readers = len(replicas)
    try:
        while open_readers and time.monotonic() < deadline and not gone():
            try:
                line = lines.get(timeout=CHECK_S)
            except queue.Empty:
                continue
            if line is None:
                open_readers -= 1
            else:
                yield line
    finally:
        stop.set()
        _drain(lines)


@dataclass(frozen=True)
class _Reader:
    """One replica's followed log, read into the shared queue until `stop`."""

    calls: AgentCalls
    replica: Replica
    since: str | None
    tail: int | None
    lines: queue.Queue[str | None]
    stop: threading.Event

    def run(self) -> None:
        prefix = f"{self.replica.replica}| "
        try:
            for line in self.calls.log_lines(self.replica, True, self.since, self.tail):
                if self.stop.is_set():
                    return  # leaving the generator closes the agent connection
                if line:
                    _put(self.lines, prefix + line, self.stop)
        except ShoalError as exc:
            _put(self.lines, f"{prefix}[shoal] {exc}", self.stop)
        finally:
            _put(self.lines, None, self.stop)


def _put(lines: queue.Queue[str | None], line: str | None, stop: threading.Event) -> None:
    """Queue a line unless the follower left (then a full queue must not block the reader)."""
    while not stop.is_set():
        with contextlib.suppress(queue.Full):
            lines.put(line, timeout=CHECK_S)
            return


def _drain(lines: queue.Queue[str | None]) -> None:
    with contextlib.suppress(queue.Empty):
        while True:
            lines.get_nowait()

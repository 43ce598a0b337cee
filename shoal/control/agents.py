"""The server's calls to agents over the overlay: container logs and exec (control).

Each agent serves its endpoints on its overlay address (the first address of its node subnet),
so the server reaches every node this way, NAT'd ones too, through the WireGuard mesh.
Authenticated with the per-node agent secret issued at join.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from shoal.errors import ShoalError
from shoal.model.addressing import overlay_ip

CONNECT_TIMEOUT_S = 5.0


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
        params: dict[str, Any] = {"follow": "1" if follow else "0"}
        if since:
            params["since"] = since
        if tail is not None:
            params["tail"] = tail
        path = f"/agent/v1/containers/{replica.container_id}/logs"
        with self._client(replica, None if follow else 30.0) as client:
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
    calls: AgentCalls, replicas: Sequence[Replica], since: str | None, tail: int | None
) -> Iterator[str]:
    """The replicas' lines as they come, one reader thread per replica feeding one queue."""
    lines: queue.Queue[str | None] = queue.Queue(maxsize=1000)

    def read(replica: Replica) -> None:
        try:
            for line in calls.log_lines(replica, True, since, tail):
                lines.put(f"{replica.replica}| {line}")
        except ShoalError as exc:
            lines.put(f"{replica.replica}| [shoal] {exc}")
        finally:
            lines.put(None)

    for replica in replicas:
        threading.Thread(target=read, args=(replica,), daemon=True).start()
    open_readers = len(replicas)
    while open_readers:
        line = lines.get()
        if line is None:
            open_readers -= 1
        else:
            yield line

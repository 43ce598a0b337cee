"""Fair use of the API server: caps on what one caller may hold, and limits on every request.

Under control/app.py, around every view:
- `Slots`: counted holds under caps. Streams, followed logs, exec and the UI's event stream take a
  slot of their token (`streams_per_principal`) and of all people together (`people_streams`); a
  node's long-poll and report take one of that node (`requests_per_node`). Past a cap the caller
  gets 429 with one line, at once, without waiting for anything.
- `RequestGuard` (WSGI middleware): a body larger than its route allows is 413 before a byte of
  it is read (Content-Length), a body without a length is 411, a multipart form anywhere but the
  UI's deploy page is 415, and reading a body has a total deadline. Requests that read a body
  before anyone is authenticated (the UI's sign-in) share a few slots.
- `ShoalRequest`: forms are parsed in memory, never spooled to files (the body limit bounds them).
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import IO, Any

from flask import Request
from werkzeug.exceptions import RequestTimeout

from shoal.errors import ShoalError

MIB = 1024 * 1024
# A body of this many bytes or more is refused (413), by Caddy from Content-Length alone before
# proxying (front.py), and here again for a request that reached a lane some other way.
DEFAULT_BODY = 1_000_000
BODY_LIMITS = {  # path → the size refused there
    "/api/v1/join": 60_000,
    "/login": 20_000,
    "/api/v1/deploy": 12_100_000,  # 1,000,000 characters as JSON: 12 bytes each at worst
    "/deploy": 4_100_000,  # the form: a file of 1,000,000 characters, 4 bytes each at worst
    "/api/v1/secrets": 12_600_000,  # 1 MiB of base64 characters, escaped as badly
    "/secrets": 2_000_000,
}
MULTIPART_PATHS = {"/deploy"}  # the UI's deploy form uploads a file; no other form does
ANONYMOUS_BODY_PATHS = {"/login"}  # bodies read before any credential is checked
ANONYMOUS_BODIES = 8
BODY_DEADLINE_S = 30.0
DRAINED = 64 * 1024  # an unread rest of a body up to this is drained (Caddy has it buffered)
INPUT = "shoal.input"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
Release = Callable[[], None]


class TooMany(ShoalError):
    """A cap is full (429); the message names the cap."""


class Slots:
    """Counted holds under per-key caps, taken and released from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: Counter[str] = Counter()

    def take(self, caps: Sequence[tuple[str, int, str]]) -> Release:
        """One slot under every (key, cap, what) or none: TooMany naming the first full cap."""
        with self._lock:
            for key, cap, what in caps:
                if self._held[key] >= cap:
                    raise TooMany(f"too many {what} at once (at most {cap}): close one and retry")
            for key, _, _ in caps:
                self._held[key] += 1
        return self._releaser([key for key, _, _ in caps])

    def _releaser(self, keys: list[str]) -> Release:
        done = threading.Event()

        def release() -> None:
            with self._lock:
                if done.is_set():
                    return
                done.set()
                for key in keys:
                    self._held[key] -= 1
                    if self._held[key] <= 0:
                        del self._held[key]

        return release

    def held(self, key: str) -> int:
        with self._lock:
            return self._held[key]


def method_label(method: str) -> str:
    """A metrics label from a fixed set: a made-up method must not grow the label set."""
    return method if method in KNOWN_METHODS else "OTHER"


def unread_body(environ: dict[str, Any]) -> int:
    """Bytes of the request body the app did not read."""
    wrapper = environ.get(INPUT)
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0
    return max(length - wrapper.consumed, 0) if isinstance(wrapper, _DeadlineInput) else 0


def closes_unread(environ: dict[str, Any], headers: Any) -> None:
    """`Connection: close` on an answer that left much of the body unread: reading the rest at
    the client's pace (what the server would do to keep the connection) could hold the thread."""
    if unread_body(environ) > DRAINED:
        headers["Connection"] = "close"


def body_limit(path: str) -> int:
    return BODY_LIMITS.get(path.rstrip("/") or "/", DEFAULT_BODY)


def too_large(limit: int) -> str:
    return f"request body too large: it must be under {limit} bytes here"


class _DeadlineInput:
    """wsgi.input with a total deadline (a body trickled in slowly cannot hold a thread for long),
    counting what was read."""

    def __init__(self, stream: Any, deadline_s: float) -> None:
        self._stream, self._deadline = stream, time.monotonic() + deadline_s
        self.consumed = 0

    def _check(self) -> None:
        if time.monotonic() > self._deadline:
            raise RequestTimeout(f"the request body took longer than {BODY_DEADLINE_S:g}s to arrive")

    def read(self, size: int | None = None) -> bytes:
        self._check()  # cheroot's input reads to the end of the body only with None, not -1
        data = bytes(self._stream.read(None if size is None or size < 0 else size))
        self.consumed += len(data)
        return data

    def readline(self, size: int | None = None) -> bytes:
        self._check()
        data = bytes(self._stream.readline(None if size is None or size < 0 else size))
        self.consumed += len(data)
        return data

    def __iter__(self) -> Any:
        return iter(self.readline, b"")


class RequestGuard:
    """WSGI middleware refusing oversized, unsized and misplaced bodies before they are read."""

    def __init__(self, app: Callable[..., Iterable[bytes]], slots: Slots) -> None:
        self.app, self.slots = app, slots

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        refusal = _refusal(environ, path)
        if refusal is not None:
            return _answer(start_response, *refusal)
        if "wsgi.input" in environ:
            environ["wsgi.input"] = environ[INPUT] = _DeadlineInput(environ["wsgi.input"], BODY_DEADLINE_S)
        if method != "POST" or path not in ANONYMOUS_BODY_PATHS:
            return self.app(environ, start_response)
        try:
            release = self.slots.take([("anonymous-bodies", ANONYMOUS_BODIES, "sign-ins")])
        except TooMany as exc:
            return _answer(start_response, 429, str(exc))
        try:
            return _closing(self.app(environ, start_response), release)
        except BaseException:
            release()
            raise


def _refusal(environ: dict[str, Any], path: str) -> tuple[int, str] | None:
    length_text = environ.get("CONTENT_LENGTH") or ""
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    if chunked:
        return 411, "a request body needs a Content-Length header"
    try:
        length = int(length_text) if length_text else 0
    except ValueError:
        return 400, "Content-Length is not a number"
    limit = body_limit(path)
    if length >= limit:
        return 413, too_large(limit)
    multipart = environ.get("CONTENT_TYPE", "").startswith("multipart/")
    if multipart and path not in MULTIPART_PATHS:
        return 415, "multipart bodies are accepted only by the deploy form"
    return None


def _answer(start_response: Callable[..., Any], status: int, message: str) -> list[bytes]:
    body = json.dumps({"error": message}).encode()
    reasons = {400: "Bad Request", 411: "Length Required", 413: "Content Too Large",
               415: "Unsupported Media Type", 429: "Too Many Requests"}  # fmt: skip
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    if status in (411, 413):
        headers.append(("Connection", "close"))  # the unread body must not be taken for a request
    start_response(f"{status} {reasons[status]}", headers)
    return [body]


class _closing:
    """The app's response iterable, calling `release` once it is closed."""

    def __init__(self, inner: Iterable[bytes], release: Release) -> None:
        self._inner, self._release = inner, release

    def __iter__(self) -> Any:
        return iter(self._inner)

    def close(self) -> None:
        try:
            close = getattr(self._inner, "close", None)
            if close is not None:
                close()
        finally:
            self._release()


class ShoalRequest(Request):
    """Flask's request, parsing forms in memory: the body limit bounds them, nothing is spooled."""

    max_form_parts = 50
    max_form_memory_size = 4 * MIB

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        return io.BytesIO()

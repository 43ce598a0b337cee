"""The client's errors: every failure of a call to the API as one line a person can read.

Raised by `shoal.client.transport`; the CLI prints them and exits non-zero, the agent logs them.
"""

from __future__ import annotations

from shoal.errors import ShoalError


class ApiError(ShoalError):
    """The server answered with an error status; the message is the server's own `error` line."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class UnauthorizedError(ApiError):
    """401: the token is unknown or missing."""


class ForbiddenError(ApiError):
    """403: the token's role or node may not do this."""


class NotFoundError(ApiError):
    """404: the named thing does not exist."""


class BadAnswer(ShoalError):
    """The server answered, but not with what this client reads (a field missing or mistyped)."""

    def __str__(self) -> str:
        return f"unexpected answer from the server: {self.args[0]}"


class Unreachable(ShoalError):
    """No HTTP answer at all: connection refused, DNS, TLS verification, timeout."""


def for_status(status: int, message: str) -> ApiError:
    """The ApiError subclass for an HTTP status."""
    kinds: dict[int, type[ApiError]] = {401: UnauthorizedError, 403: ForbiddenError, 404: NotFoundError}
    return kinds.get(status, ApiError)(status, message)

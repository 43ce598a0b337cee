"""Errors people see: one line naming what was wrong. Shared by every layer (imports nothing)."""

from __future__ import annotations


class ShoalError(Exception):
    """An error whose message is fit to show a person as one line."""


class ConfigError(ShoalError):
    """A file, flag or document a person wrote is wrong."""


class NotFound(ShoalError):
    """A named thing does not exist."""


class Conflict(ShoalError):
    """The request conflicts with what exists."""


def first_line(error: BaseException | str) -> str:
    """The first line of an error's message, stripped; an exception that says nothing is named
    by its type (a text that says nothing stays "")."""
    text = str(error).strip()
    if text:
        return text.splitlines()[0].strip()
    return "" if isinstance(error, str) else type(error).__name__

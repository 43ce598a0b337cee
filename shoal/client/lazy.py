"""A module imported when one of its names is first used (client/, under api).

The API client's typed answers are pydantic models; importing pydantic and them takes about 60 ms
of a command's start, which `shoal deploy` need not spend before its request goes out. Thread-safe:
`importlib.import_module` holds the import lock, and after the first use it is a dict lookup.
"""

from __future__ import annotations

import importlib
from typing import Any


class LazyModule:
    """Stands for module `name` (type it with an import under TYPE_CHECKING)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)

"""Marks each test with its layer from the folder it lives in: unit, integration, e2e."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.support.registry_fixtures", "tests.support.server_fixtures"]

_LAYERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        for layer in _LAYERS:
            if layer in parts:
                item.add_marker(getattr(pytest.mark, layer))

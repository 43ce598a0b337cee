"""`shoal --help` lists every command without importing one: no Flask, psycopg or pyroute2."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from shoal.cli.main import _COMMANDS
from shoal.entry import _PROCESS_COMMANDS

HEAVY = ("flask", "psycopg", "pyroute2", "pydantic")
PROBE = """
import sys
sys.argv = ["shoal", "--help"]
from shoal.entry import main
try:
    main()
except SystemExit:
    pass
print(sorted({m.split(".")[0] for m in sys.modules} & set(%r)))
"""


def test_help_lists_every_command_and_imports_no_heavy_package() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE % (HEAVY,)], capture_output=True, text=True, check=True
    )
    *page, imported = done.stdout.strip().splitlines()
    assert imported == "[]", imported
    listed = {line.split()[0] for line in page if line.startswith("  ") and not line.startswith("   ")}
    assert {*_COMMANDS, *_PROCESS_COMMANDS} <= listed


@pytest.mark.parametrize("name", sorted({**_COMMANDS, **_PROCESS_COMMANDS}))
def test_each_registered_help_line_is_the_commands_own(name: str) -> None:
    module, attr, short = {**_COMMANDS, **_PROCESS_COMMANDS}[name]
    command = getattr(importlib.import_module(module), attr)
    assert command.get_short_help_str(limit=300) == short

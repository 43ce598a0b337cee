"""The `shoal` command's start-up: the collector is off while modules load, then on for the command.

Run in a fresh interpreter each, since the checks are about one process's whole life.
"""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import gc, sys
import click
import shoal.entry
seen = {}
original = click.Group.invoke
def invoke(self, ctx):
    seen.update(enabled=gc.isenabled(), frozen=gc.get_freeze_count())
    return original(self, ctx)
click.Group.invoke = invoke
sys.argv = ["shoal", *sys.argv[1:]]
try:
    shoal.entry.main()
except SystemExit:
    pass
print(seen["enabled"], seen["frozen"])
"""


def probe(*args: str) -> tuple[bool, int]:
    found = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True)
    enabled, frozen = found.stdout.split()[-2:]
    return enabled == "True", int(frozen)


def test_a_command_runs_with_the_collector_on_and_start_up_objects_frozen() -> None:
    enabled, frozen = probe("ps", "--help")
    assert enabled
    assert frozen > 10_000  # the imported modules, out of every collection's reach


def test_a_clean_process_leaves_nothing_frozen_before_main() -> None:
    found = subprocess.run(
        [sys.executable, "-c", "import gc, shoal.entry; print(gc.isenabled(), gc.get_freeze_count())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert found.stdout.split() == ["True", "0"]

"""A ControlClient over two files, for running a real agent without a server.

The test writes the desired `NodeState` to `desired.json`; the agent long-polls it (returning
as soon as its version passes `since`) and appends each `NodeStatus` it posts to `status.jsonl`.
The real server is exercised in test_join.py; here the unit under test is the agent + runtime.
"""

from __future__ import annotations

import time
from pathlib import Path

from shoal.model.state import NodeState
from shoal.model.status import NodeStatus


class FileClient:
    def __init__(self, directory: Path) -> None:
        self.desired = directory / "desired.json"
        self.statuses = directory / "status.jsonl"

    def get_node_state(self, name: str, since: int, wait: float) -> NodeState:
        deadline = time.monotonic() + min(wait, 2.0)
        seen = -1
        while True:
            mtime = self.desired.stat().st_mtime_ns
            if mtime != seen:  # parse only when the file changed: the agent's idle CPU is measured
                state, seen = NodeState.model_validate_json(self.desired.read_text()), mtime
            if state.version > since or time.monotonic() >= deadline:
                return state
            time.sleep(0.05)

    def post_status(self, name: str, status: NodeStatus) -> None:
        with self.statuses.open("a") as handle:
            handle.write(status.model_dump_json() + "\n")

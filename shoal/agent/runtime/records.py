"""What the runtime remembers of each container, on disk beside its bundle (``shoal.json``).

Written by agent.runtime at create, start, stop and each observed exit; read back by any later
Runtime (a new agent process) so it adopts running containers and keeps their restart history.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field

from shoal.agent.runtime.policy import Exit
from shoal.model.base import Wire
from shoal.model.container import ContainerSpec

RECORD_FILE = "shoal.json"


class Record(Wire):
    spec: ContainerSpec
    lower_dirs: list[str]
    started_at: float = 0.0
    exits: list[Exit] = Field(default_factory=list)
    restarts: int = 0
    stopped_by_user: bool = False
    gave_up: bool = False
    next_restart_at: float | None = None

    def exit_recorded(self) -> bool:
        """Whether the current run's exit is already in ``exits``."""
        return bool(self.exits) and self.exits[-1].started_at == self.started_at


def load(bundle: Path) -> Record | None:
    try:
        return Record.model_validate_json((bundle / RECORD_FILE).read_text())
    except FileNotFoundError:
        return None


def save(bundle: Path, record: Record) -> None:
    """Atomically (write + rename), so a killed agent never leaves half a record."""
    tmp = bundle / f".{RECORD_FILE}.tmp"
    tmp.write_text(record.model_dump_json())
    os.replace(tmp, bundle / RECORD_FILE)

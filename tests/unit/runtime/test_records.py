"""runtime.records: the per-container record survives a round trip and knows its last exit."""

from __future__ import annotations

from pathlib import Path

from shoal.agent.runtime import records
from shoal.agent.runtime.policy import Exit
from shoal.model.container import ContainerSpec


def test_round_trip_and_exit_recorded(tmp_path: Path) -> None:
    assert records.load(tmp_path) is None
    rec = records.Record(spec=ContainerSpec(id="c1", image="i"), lower_dirs=["/l/a"], started_at=5.0)
    assert not rec.exit_recorded()
    rec.exits.append(Exit(3, 5.0, 6.0))
    assert rec.exit_recorded()
    records.save(tmp_path, rec)
    back = records.load(tmp_path)
    assert back is not None and back.exits == [Exit(3, 5.0, 6.0)] and back.spec.id == "c1"
    back.started_at = 7.0  # restarted: the new run's exit is not in yet
    assert not back.exit_recorded()
    assert [p.name for p in tmp_path.iterdir()] == ["shoal.json"]

"""runtime.ObservedContainer → the wire status the agent reports."""

from __future__ import annotations

from shoal.agent.runtime import ObservedContainer
from shoal.model.container import ContainerSpec


def test_to_status() -> None:
    spec = ContainerSpec(
        id="web-1-3", service="web", replica=1, generation=3, image="r/web:1", ip="10.210.1.5"
    )
    observed = ObservedContainer(
        id="web-1-3",
        state="exited",
        pid=None,
        exit_code=3,
        started_at=10.0,
        finished_at=12.5,
        restarts=2,
        spec=spec,
    )
    status = observed.to_status()
    assert (status.service, status.replica, status.generation, status.image) == ("web", 1, 3, "r/web:1")
    assert (status.state, status.exit_code, status.restarts, status.ip) == ("exited", 3, 2, "10.210.1.5")
    assert (status.started_at, status.finished_at, status.pid) == (10.0, 12.5, None)

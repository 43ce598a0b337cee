"""runtime.policy: the pure restart decision."""

from __future__ import annotations

import pytest

from shoal.agent.runtime.policy import Exit, backoff, decide
from shoal.model.container import RestartPolicy


def runs(*codes: int, length: float = 1.0, gap: float = 0.0) -> list[Exit]:
    out, t = [], 100.0
    for code in codes:
        out.append(Exit(code, t, t + length))
        t += length + gap
    return out


def policy(name: str, **kw: float) -> RestartPolicy:
    return RestartPolicy.model_validate({"name": name, **kw})


def test_no_never_restarts() -> None:
    assert decide(policy("no"), runs(1), now=1e9).action == "give_up"


def test_always_restarts_after_backoff() -> None:
    exits = runs(0)
    d = decide(policy("always", delay_s=0.5), exits, now=exits[-1].finished_at)
    assert (d.action, d.at) == ("wait", exits[-1].finished_at + 0.5)
    assert decide(policy("always", delay_s=0.5), exits, now=exits[-1].finished_at + 0.5).action == "restart"


def test_on_failure_ignores_success_and_counts_retries() -> None:
    p = policy("on-failure", max_retries=2, delay_s=0)
    assert decide(p, runs(0), now=1e9).action == "give_up"
    assert decide(p, runs(3), now=1e9).action == "restart"
    assert decide(p, runs(3, 3), now=1e9).action == "restart"
    d = decide(p, runs(3, 3, 3), now=1e9)
    assert (d.action, d.reason) == ("give_up", "gave up after 2 restarts")


def test_on_failure_unlimited() -> None:
    assert decide(policy("on-failure", delay_s=0), runs(*[1] * 50), now=1e9).action == "restart"


@pytest.mark.parametrize("name", ["always", "unless-stopped", "on-failure"])
def test_stopped_by_a_person_is_not_restarted(name: str) -> None:
    assert decide(policy(name), runs(1), now=1e9, stopped_by_user=True).action == "give_up"


def test_always_restarts_a_stopped_container_when_the_agent_boots() -> None:
    assert decide(policy("always"), runs(1), now=1e9, stopped_by_user=True, boot=True).action == "restart"
    assert (
        decide(policy("unless-stopped"), runs(1), now=1e9, stopped_by_user=True, boot=True).action
        == "give_up"
    )


def test_backoff_doubles_caps_and_resets() -> None:
    p = policy("always", delay_s=0.5, max_delay_s=3, window_s=10)
    assert [backoff(p, runs(*[1] * n)) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    long_then_short = [*runs(1, length=60), Exit(1, 200.0, 201.0)]
    assert backoff(p, long_then_short) == 0.5
    assert backoff(p, runs(1, length=60)) == 0.0


def test_never_ran() -> None:
    assert decide(policy("always"), [], now=0).action == "give_up"

"""The health-check state machine: starting → healthy / unhealthy, start period, retries."""

from __future__ import annotations

from shoal.agent.health import due, from_image, initial, message, probe_argv, record
from shoal.agent.reconcilers.containers import Seen, health_check
from shoal.model.container import ContainerSpec, HealthCheck

CHECK = HealthCheck(test=["CMD", "true"], interval_s=2, timeout_s=1, retries=3, start_period_s=10)


def test_probe_argv_forms() -> None:
    assert probe_argv(["CMD", "wget", "-q", "x"]) == ["wget", "-q", "x"]
    assert probe_argv(["CMD-SHELL", "test -f /ok || exit 1"]) == ["/bin/sh", "-c", "test -f /ok || exit 1"]
    assert probe_argv(["NONE"]) is None
    assert probe_argv([]) is None
    assert probe_argv(["CMD"]) is None


def test_first_probe_after_one_interval() -> None:
    state = initial(CHECK, 100.0)
    assert state.status == "starting"
    assert not due(state, 101.9)
    assert due(state, 102.0)


def test_success_makes_healthy_and_resets_failures() -> None:
    state = record(initial(CHECK, 100.0), CHECK, ok=True, now=102.0)
    assert state.status == "healthy"
    state = record(state, CHECK, ok=False, now=104.0)
    state = record(state, CHECK, ok=True, now=106.0)
    assert (state.status, state.failures) == ("healthy", 0)
    assert state.next_at == 108.0


def test_failures_inside_start_period_do_not_count() -> None:
    state = initial(CHECK, 100.0)
    for now in (102.0, 104.0, 106.0, 108.0):
        state = record(state, CHECK, ok=False, now=now)
    assert (state.status, state.failures) == ("starting", 0)


def test_retries_failures_after_start_period_make_unhealthy() -> None:
    state = initial(CHECK, 100.0)
    state = record(state, CHECK, ok=False, now=111.0)
    state = record(state, CHECK, ok=False, now=113.0)
    assert (state.status, state.failures) == ("starting", 2)
    state = record(state, CHECK, ok=False, now=115.0, output="boom\nconnection refused\n")
    assert (state.status, state.failures) == ("unhealthy", 3)
    assert message(state) == "health check failed 3 times: connection refused"


def test_healthy_counts_failures_even_in_start_period() -> None:
    state = record(initial(CHECK, 100.0), CHECK, ok=True, now=102.0)
    for now in (104.0, 106.0, 108.0):
        state = record(state, CHECK, ok=False, now=now)
    assert state.status == "unhealthy"


def test_recovers_from_unhealthy() -> None:
    check = CHECK.model_copy(update={"start_period_s": 0, "retries": 1})
    state = record(initial(check, 0.0), check, ok=False, now=2.0)
    assert state.status == "unhealthy"
    assert record(state, check, ok=True, now=4.0).status == "healthy"


def test_start_interval_paces_probes_only_while_starting_in_the_start_period() -> None:
    check = HealthCheck(test=["CMD", "true"], interval_s=30.0, start_period_s=10.0, start_interval_s=1.0)
    state = initial(check, 100.0)
    assert state.next_at == 101.0
    state = record(state, check, ok=False, now=101.0)
    assert state.next_at == 102.0  # still starting, inside the start period
    state = record(state, check, ok=True, now=102.0)
    assert state.next_at == 132.0  # healthy: the normal interval
    late = record(initial(check, 100.0), check, ok=False, now=111.0)
    assert late.next_at == 141.0  # past the start period


def test_image_healthcheck_from_the_oci_config() -> None:
    raw = {"Test": ["CMD-SHELL", "wget -q -O- localhost"], "Interval": 5_000_000_000, "Retries": 2}
    config = {"config": {"Healthcheck": {**raw, "StartInterval": 10**9}}}
    check = from_image(config)
    assert check is not None and probe_argv(check.test) == ["/bin/sh", "-c", "wget -q -O- localhost"]
    assert (check.interval_s, check.timeout_s, check.retries, check.start_interval_s) == (5.0, 30.0, 2, 1.0)
    assert from_image({"config": {"Healthcheck": {"Test": ["NONE"]}}}) is None
    assert from_image({"config": {}}) is None and from_image({}) is None


def test_image_check_used_only_when_the_file_has_none_and_asked_for() -> None:
    image_check = HealthCheck(test=["CMD", "true"])
    seen = Seen("c1", "running", healthcheck=image_check)
    asked = ContainerSpec(id="c1", image="img", image_healthcheck=True)
    assert health_check(asked, seen) == image_check
    assert health_check(ContainerSpec(id="c1", image="img"), seen) is None
    own = HealthCheck(test=["CMD", "false"])
    assert health_check(asked.model_copy(update={"healthcheck": own}), seen) == own

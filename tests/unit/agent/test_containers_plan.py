"""The containers reconciler's pure plan: start, remove, adopt, restart."""

from __future__ import annotations

from shoal.agent.reconcilers.containers import Seen, _pinned, plan_containers
from shoal.model.container import ContainerSpec, RestartPolicy


def spec(cid: str, restart: str = "always") -> ContainerSpec:
    return ContainerSpec(id=cid, image="r/app:1", restart=RestartPolicy(name=restart))


def seen(cid: str, state: str = "running", exit_code: int | None = None, started: float = 100.0) -> Seen:
    return Seen(cid, state, pid=42 if state == "running" else None, exit_code=exit_code, started_at=started)


def test_starts_missing_and_removes_undesired() -> None:
    plan = plan_containers([spec("a"), spec("b")], {"b": seen("b"), "old": seen("old")})
    assert [s.id for s in plan.start] == ["a"]
    assert plan.remove == ("old",)
    assert plan.restart == ()


def test_adopts_running_containers_nothing_to_do() -> None:
    plan = plan_containers([spec("a"), spec("b")], {"a": seen("a"), "b": seen("b")}, now=1000.0)
    assert plan.empty


def test_exited_with_code_is_left_to_the_supervisor() -> None:
    plan = plan_containers([spec("a")], {"a": seen("a", "exited", exit_code=1)}, now=1000.0)
    assert plan.empty


def test_lost_container_restarts_unless_policy_no() -> None:
    lost = {"a": seen("a", "exited", exit_code=None, started=100.0)}
    assert [s.id for s in plan_containers([spec("a")], lost, now=1000.0).restart] == ["a"]
    assert plan_containers([spec("a", "no")], lost, now=1000.0).empty
    assert plan_containers([spec("a")], lost, now=102.0).empty  # exit code may still be on its way


def test_created_but_never_started_is_restarted() -> None:
    plan = plan_containers([spec("a")], {"a": seen("a", "created")}, now=1000.0)
    assert [s.id for s in plan.restart] == ["a"]


def test_unhealthy_restarts_per_policy() -> None:
    observed = {"a": seen("a"), "b": seen("b")}
    plan = plan_containers([spec("a"), spec("b", "no")], observed, unhealthy=["a", "b"], now=1000.0)
    assert [s.id for s in plan.restart] == ["a"]


def test_waiting_after_a_failed_start_is_not_retried_yet() -> None:
    plan = plan_containers([spec("a"), spec("b")], {}, waiting=["a"])
    assert [s.id for s in plan.start] == ["b"]


def test_pinned_reference() -> None:
    digest = "sha256:" + "a" * 64
    assert _pinned(ContainerSpec(id="x", image="127.0.0.1:5000/shi/app:1", image_digest=digest)) == (
        f"127.0.0.1:5000/shi/app@{digest}"
    )
    assert _pinned(ContainerSpec(id="x", image="127.0.0.1:5000/app", image_digest=digest)) == (
        f"127.0.0.1:5000/app@{digest}"
    )

"""Deploy progress from a service's tasks: counts, done, and failures with the agent's reason."""

from __future__ import annotations

from typing import Any

import pytest

from shoal.cli.deploy import DeployFailed, verdict
from shoal.cli.progress import progress
from shoal.client.models import ServiceDetail


def detail(tasks: list[dict[str, Any]], replicas: int = 2, revision: int = 2, **extra: Any) -> ServiceDetail:
    return ServiceDetail.model_validate(
        {
            "name": "web",
            "revision": revision,
            "replicas": replicas,
            "tasks": tasks,
            "unknown_field": 1,
            **extra,
        }
    )


def task(replica: int, state: str, health: str = "none", revision: int = 2, **extra: Any) -> dict[str, Any]:
    return {
        "service": "web",
        "replica": replica,
        "state": state,
        "health": health,
        "revision": revision,
        "desired": "run",
        "node": "n1",
        **extra,
    }


def test_counts_pulled_started_ready() -> None:
    got = progress(detail([task(1, "running", "starting"), task(2, "created")]), 2)
    assert (got.desired, got.pulled, got.started, got.ready) == (2, 2, 1, 0)
    assert not got.done and got.failure is None
    assert got.line() == "web: 2/2 pulled, 1/2 started, 0/2 healthy"


def test_done_when_all_running_and_healthy_or_without_check() -> None:
    got = progress(detail([task(1, "running", "healthy"), task(2, "running", "none")]), 2)
    assert got.done


def test_not_done_while_old_revision_still_runs() -> None:
    tasks = [task(1, "running"), task(2, "running"), task(1, "running", revision=1)]
    assert not progress(detail(tasks), 2).done
    stopping = [task(1, "running"), task(2, "running"), {**task(1, "running", revision=1), "desired": "stop"}]
    assert progress(detail(stopping), 2).done


def test_tasks_of_other_revisions_do_not_count() -> None:
    got = progress(detail([task(1, "running", revision=1), task(2, "running", revision=1)]), 2)
    assert got.ready == 0 and not got.done


def test_failed_task_reports_agent_reason_on_one_line() -> None:
    reason = "image registry:5000/app:1: layer sha256:ab refused:\n entry ../etc/passwd escapes the rootfs"
    got = progress(detail([task(1, "running"), task(2, "failed", message=reason)]), 2)
    assert got.failure == (
        "web replica 2 on n1 failed: image registry:5000/app:1: layer sha256:ab refused:"
        " entry ../etc/passwd escapes the rootfs"
    )
    with pytest.raises(DeployFailed, match="escapes the rootfs"):
        verdict([got])


def test_unhealthy_task_fails() -> None:
    got = progress(detail([task(1, "running", "unhealthy", message="health check exited 1")], replicas=1), 2)
    assert got.failure is not None and "unhealthy: health check exited 1" in got.failure


def test_failed_rollout_and_superseded_revision_fail() -> None:
    failed = detail([], rollout={"state": "failed", "message": "no node fits 8 cpus"})
    assert progress(failed, 2).failure == "web rollout failed: no node fits 8 cpus"
    assert "moved on to revision 3" in str(progress(detail([], revision=3), 2).failure)


def test_zero_replicas_is_done_and_global_needs_one() -> None:
    assert progress(detail([], replicas=0), 2).done
    assert not progress(detail([], mode="global"), 2).done
    assert progress(detail([task(1, "running")], mode="global"), 2).done


def test_verdict_needs_every_service() -> None:
    done = progress(detail([task(1, "running"), task(2, "running")]), 2)
    pending = progress(detail([task(1, "pulling")]), 2)
    assert verdict([done]) and not verdict([done, pending])


def test_line_show_prints_only_changes(capsys: pytest.CaptureFixture[str]) -> None:
    from shoal.cli.deploy import LineShow, summary
    from shoal.client.receipt import parse_deploy_result

    show = LineShow()
    first = progress(detail([task(1, "created")]), 2)
    show([first])
    show([first])
    show([progress(detail([task(1, "running")]), 2)])
    assert capsys.readouterr().err.splitlines() == [
        "web: 1/2 pulled, 0/2 started, 0/2 healthy",
        "web: 1/2 pulled, 1/2 started, 1/2 healthy",
    ]
    result = parse_deploy_result({"project": "p", "services": [{"name": "web", "revision": 2}]})
    assert summary(result) == "project p: web (revision 2)"


def test_exited_task_fails_with_its_message() -> None:
    got = progress(detail([task(1, "exited", message="exit code 127")], replicas=1), 2)
    assert got.failure == "web replica 1 on n1 exited: exit code 127"


def test_an_unplaced_replica_says_why_in_the_progress_line() -> None:
    why = "volume data is on node n2 (node down)"
    got = progress(detail([task(1, "running")], unplaced=[{"replica": 2, "reason": why}]), 2)
    assert not got.done
    assert got.line() == f"web: 1/2 pulled, 1/2 started, 1/2 healthy (unplaced: replica 2: {why})"
    assert progress(detail([task(1, "running")]), 2).line() == "web: 1/2 pulled, 1/2 started, 1/2 healthy"

"""`shoal deploy` is done when the cluster serves the new replicas, not when they run (cli.deploy,
cli.progress): published in every node's state and applied by every node up; a node that never
applies is named after SERVE_WAIT_S, not waited for."""

from __future__ import annotations

from typing import Any

import pytest

from shoal.cli import deploy
from shoal.cli.deploy import not_served, served_late, wait
from shoal.cli.progress import progress
from shoal.client.models import ServiceDetail, Task
from shoal.client.receipt import DeployedService


def _detail(serving: dict[str, Any] | None, ready: int = 2) -> ServiceDetail:
    tasks = [Task(id=f"w-{r}", service="web", replica=r, revision=1, state="running") for r in range(ready)]
    return ServiceDetail(name="web", revision=1, replicas=2, tasks=tasks, serving=serving)  # type: ignore[arg-type]


def test_running_replicas_not_yet_published_are_not_done() -> None:
    got = progress(_detail({"serving": 2, "published": 1, "cluster_version": 7, "lagging": []}), 1)
    assert got.ready_done and not got.served and not got.done
    assert got.line() == "web: 2/2 pulled, 2/2 started, 2/2 healthy, publishing 1 to every node"


def test_published_replicas_wait_for_nodes_that_have_not_applied_them() -> None:
    got = progress(_detail({"serving": 2, "published": 2, "cluster_version": 7, "lagging": ["n2", "n3"]}), 1)
    assert not got.done
    assert got.line().endswith("2/2 healthy, waiting for n2, n3 to serve them")


def test_done_once_published_and_applied_everywhere() -> None:
    got = progress(_detail({"serving": 2, "published": 2, "cluster_version": 7, "lagging": []}), 1)
    assert got.done and got.line() == "web: 2/2 pulled, 2/2 started, 2/2 healthy"


def test_a_server_that_does_not_say_is_done_at_healthy_as_before() -> None:
    got = progress(_detail(None), 1)
    assert got.done and not got.serving_known  # `--output json` then says "served": false


def test_serving_says_nothing_before_the_replicas_are_ready() -> None:
    got = progress(_detail({"serving": 1, "published": 0, "lagging": ["n2"]}, ready=1), 1)
    assert not got.ready_done and got.serving_note() == ""


def test_the_wait_for_serving_is_bounded() -> None:
    lagging = progress(_detail({"serving": 2, "published": 2, "cluster_version": 7, "lagging": ["n2"]}), 1)
    assert not served_late([lagging], None, 100.0)
    assert not served_late([lagging], 100.0, 100.0 + deploy.SERVE_WAIT_S - 0.1)
    assert served_late([lagging], 100.0, 100.0 + deploy.SERVE_WAIT_S)
    assert "web, waiting for n2 to serve them" in not_served([lagging])


class Api:
    """Answers with the given serving blocks in turn, the last one for ever."""

    def __init__(self, servings: list[dict[str, Any]]) -> None:
        self.servings = servings

    def service(self, name: str) -> ServiceDetail:
        serving = self.servings.pop(0) if len(self.servings) > 1 else self.servings[0]
        return _detail(serving)


def test_wait_returns_once_served_polling_faster_meanwhile() -> None:
    api: Any = Api(
        [
            {"serving": 2, "published": 0},
            {"serving": 2, "published": 2, "lagging": ["n2"]},
            {"serving": 2, "published": 2},
        ]
    )
    pauses: list[float] = []
    states = wait(api, [DeployedService(name="web", revision=1)], 60, lambda s: None, pauses.append)
    assert states[0].done and api.servings == [{"serving": 2, "published": 2}]
    assert pauses == [deploy.SERVE_POLL_S] * 2  # nodes' applied reports make no event to wake it


def test_wait_names_a_node_that_never_serves_and_returns(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(deploy, "SERVE_WAIT_S", 0.05)
    api: Any = Api([{"serving": 2, "published": 2, "lagging": ["n9"]}])
    states = wait(api, [DeployedService(name="web", revision=1)], 60, lambda s: None, lambda s: None)
    assert states[0].ready_done and states[0].lagging == ("n9",)
    assert "not yet served everywhere" in capsys.readouterr().err

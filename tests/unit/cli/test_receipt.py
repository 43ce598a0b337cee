"""The deploy's answer read without pydantic: fields, unknown fields, and one line per mistake."""

from __future__ import annotations

from typing import Any

import pytest

from shoal.client.errors import BadAnswer
from shoal.client.receipt import DeployedService, DeployResult, parse_deploy_result


def test_reads_the_answer_and_ignores_fields_it_does_not_know() -> None:
    answer = {"project": "p", "services": [{"name": "web", "revision": 3, "new": 1}], "later": True}
    got = parse_deploy_result(answer)
    assert got == DeployResult("p", [DeployedService("web", 3)])
    services = [{"name": "web", "revision": 3}]
    wire = {"project": "p", "services": services, "changes": [], "orphans": [], "pruned": []}
    assert got.to_wire() == wire


def test_missing_project_and_services_are_empty() -> None:
    assert parse_deploy_result({}) == DeployResult("", [])


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ([], "the deploy answer is not a JSON object"),
        ({"project": 1}, "project: must be a string"),
        ({"services": {}}, "services: must be a list"),
        ({"services": ["web"]}, "services.0: must be an object"),
        ({"services": [{"revision": 1}]}, "services.0.name: must be a string"),
        ({"services": [{"name": "web", "revision": "2"}]}, "services.0.revision: must be an integer"),
        ({"services": [{"name": "web", "revision": True}]}, "services.0.revision: must be an integer"),
        ({"services": [{"name": "web", "revision": None}]}, "services.0.revision: must be an integer"),
    ],
)
def test_a_wrong_answer_is_one_line_naming_the_field(answer: Any, message: str) -> None:
    with pytest.raises(BadAnswer) as caught:
        parse_deploy_result(answer)
    assert str(caught.value) == f"unexpected answer from the server: {message}"


def test_a_dry_run_answer_without_revisions_is_read() -> None:
    """A dry run stores nothing: its answer may carry no revision (revision null)."""
    answer = {
        "project": "p",
        "services": [{"name": "web", "revision": None}],
        "changes": [{"name": "web", "change": "new"}],
        "dry_run": True,
    }
    got = parse_deploy_result(answer)
    assert got.services[0].revision == 0 and got.changes[0].change == "new"

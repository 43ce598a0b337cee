"""Version skew: an agent may be one minor behind its server; what blocks an upgrade."""

from __future__ import annotations

import pytest

from shoal.control.upgrade import blockers
from shoal.model.versions import agent_problem, minor_of, next_minor


@pytest.mark.parametrize(
    ("agent", "server", "fits"),
    [
        ("0.3.0", "0.3.2", True),
        ("0.2.9", "0.3.0", True),
        ("0.1.4", "0.3.0", False),
        ("0.4.0", "0.3.0", False),
        ("1.2.0", "2.0.0", False),
        ("", "0.3.0", False),
        ("0.3.0.dev4", "0.3.0", True),
    ],
)
def test_an_agent_fits_its_server_when_at_most_one_minor_behind(agent: str, server: str, fits: bool) -> None:
    assert (agent_problem(agent, server) is None) is fits


def test_versions_are_read_as_release_numbers() -> None:
    assert minor_of("0.3.1") == (0, 3) and minor_of("garbage") is None
    assert next_minor("0.1.0") == "0.2.0"


def test_what_blocks_an_upgrade_one_line_each() -> None:
    nodes = [{"name": "a", "down": False}, {"name": "b", "down": False}, {"name": "c", "down": True}]
    services = [
        {"name": "p.web", "rollout_state": "updating"},
        {"name": "p.db", "rollout_state": "completed"},
    ]
    got = blockers("0.3.0", nodes, {"a": "0.2.0", "b": "0.1.0"}, services)
    assert got == [
        "node b: agent 0.1.0 is more than one minor version behind server 0.3.0: upgrade it first",
        "node c: down, its agent's version cannot be checked",
        "service p.web: a rollout is updating",
    ]

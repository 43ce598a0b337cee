"""Hostile deploy files (tests/unit/data/compose/hostile): each is refused, while it is read,
with one short line naming what is wrong; numbers past the documented maximums are refused."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from shoal.model import compose_budget
from shoal.model.compose import ComposeError, parse_compose
from shoal.model.limits import MAX_REPLICAS

pytestmark = pytest.mark.unit
HOSTILE = sorted((Path(__file__).parents[1] / "data" / "compose" / "hostile").glob("*.yaml"))
HEAD = "services:\n  web:\n    image: busybox\n"

EXPECTED = {
    "alias_as_key": "an alias (*k) cannot be a mapping key",
    "big_scalar_aliased": "larger than 2,000,000 characters",
    "billion_laughs": "larger than 2,000,000 characters",
    "collection_key_with_aliases": "larger than 2,000,000 characters",
    "cpus_inf": "invalid cpus inf",
    "cpus_nan": "invalid cpus nan",
    "deep_nesting": "nested deeper than 64 levels",
    "duplicate_key_bomb": "larger than 2,000,000 characters",
    "duration_huge": "longer than the maximum 366 days",
    "healthcheck_interval_huge": 'invalid duration "1e30s"',
    "long_key": "invalid YAML",
    "many_values": "more than 5,000 values in one file",
    "memory_1e38": "invalid size 1e+38",
    "memory_huge": "is more than the maximum 1 PiB",
    "merge_chain": "more than 5,000 values",
    "merge_fan_in": "larger than 2,000,000 characters",
    "pids_huge": "less than or equal to 4194304",
    "replicas_huge": f"less than or equal to {MAX_REPLICAS}",
    "retries_huge": "less than or equal to 1000000",
    "self_alias": "alias *c refers to itself",
    "tmpfs_size_huge": "is more than the maximum 1 PiB",
}


def refusal(text: str) -> str:
    with pytest.raises(ComposeError) as caught:
        parse_compose(text, "p")
    return str(caught.value)


@pytest.mark.parametrize("path", HOSTILE, ids=[p.stem for p in HOSTILE])
def test_hostile_file_is_refused_with_one_short_line(path: Path) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    message = refusal(path.read_text())
    assert EXPECTED[path.stem] in message
    assert "\n" not in message and len(message) <= 240
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50 * 1024  # KiB


def test_every_hostile_file_has_an_expectation() -> None:
    assert {p.stem for p in HOSTILE} == set(EXPECTED)


def test_anchors_and_merges_a_real_file_uses_are_accepted() -> None:
    text = (
        "x-env: &env {LOG: info, MODE: prod}\n"
        "x-deploy: &deploy\n  replicas: 2\n  resources: {limits: {cpus: '0.5', memory: 64m}}\n"
        "services:\n"
        + "".join(
            f"  s{i}:\n    image: busybox\n    environment:\n      <<: *env\n      N: '{i}'\n"
            f"    deploy: *deploy\n"
            for i in range(40)
        )
    )
    spec = parse_compose(text, "p")
    assert spec.services["s7"].environment == {"LOG": "info", "MODE": "prod", "N": "7"}
    assert spec.services["s39"].resources.limit_cpus == 0.5


def test_the_maximums_themselves_are_accepted() -> None:
    text = HEAD + (
        f"    deploy:\n      replicas: {MAX_REPLICAS}\n      resources:\n        limits:\n"
        "          cpus: 1024\n          memory: 1024t\n          pids: 4194304\n"
        "    stop_grace_period: 8784h\n"
    )
    service = parse_compose(text, "p").services["web"]
    assert (service.replicas, service.resources.limit_cpus) == (MAX_REPLICAS, 1024.0)
    assert service.resources.limit_memory_bytes == 1 << 50
    assert service.stop_grace_period_s == 8784 * 3600


@pytest.mark.parametrize(
    ("value", "expected"),
    [("cpus: 1025", "more than the maximum 1024"), ("cpus: -1", "invalid cpus -1"), ("cpus: 0", "cpus 0")],
)
def test_cpus_bounds(value: str, expected: str) -> None:
    assert expected in refusal(HEAD + f"    deploy:\n      resources:\n        limits:\n          {value}\n")


def test_a_key_that_is_a_collection_is_refused_even_without_aliases() -> None:
    message = refusal(HEAD + "    labels:\n      ? [a, b]\n      : v\n")
    assert "a mapping key must be a plain value, not a collection" in message


def test_the_budget_counts_every_use_of_an_anchor() -> None:
    scalar = "x" * 100_000
    uses = "".join("      - *s\n" for _ in range(18))
    parse_compose(f"x-s: &s {scalar}\n{HEAD}    command:\n{uses}", "p")  # 1.9 M with the anchor: within
    uses += "      - *s\n      - *s\n"
    assert "larger than 2,000,000" in refusal(f"x-s: &s {scalar}\n{HEAD}    command:\n{uses}")
    assert compose_budget.MAX_EXPANDED == 2_000_000

"""Which tag the version-skew tests take as the previous release: the newest of the minor before."""

from __future__ import annotations

from tests.support.releases import previous_release

TAGS = ["v0.1.0", "v0.1.2", "v0.1.10", "v0.2.0", "v0.0.9", "nightly", "v0.1.3-rc1"]


def test_the_newest_tag_of_the_previous_minor() -> None:
    assert previous_release("0.2.0", TAGS) == "v0.1.10"
    assert previous_release("0.2.3.dev1", TAGS) == "v0.1.10"
    assert previous_release("0.3.0", TAGS) == "v0.2.0"


def test_none_without_one() -> None:
    assert previous_release("0.5.0", TAGS) is None
    assert previous_release("unknown", TAGS) is None

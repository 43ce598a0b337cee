"""The agent's own check before a start: whatever the server sent, no bind of its forbidden paths
(as written, normalised, or through a symlink on the host)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoal.agent.runtime.runtime import check_binds
from shoal.errors import ConfigError
from shoal.model.container import ContainerSpec, Mount
from shoal.model.policy import forbidden_paths


def spec(source: str) -> ContainerSpec:
    return ContainerSpec(
        id="c1", service="p.web", image="app:1", mounts=[Mount(kind="bind", source=source, target="/x")]
    )


@pytest.mark.parametrize(
    "source",
    ["/", "/var/lib/shoal", "/srv/agent-data/images", "/srv//agent-data/", "/srv/ok/../agent-data", "/proc"],
)
def test_forbidden_binds_refused(source: str) -> None:
    with pytest.raises(ConfigError, match="refused by this node: exposes"):
        check_binds(spec(source), forbidden_paths("/srv/agent-data"))


def test_a_symlink_to_a_forbidden_path_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "innocent").symlink_to(data)
    with pytest.raises(ConfigError, match=f"exposes {data}"):
        check_binds(spec(str(tmp_path / "innocent")), forbidden_paths(str(data)))


def test_other_binds_and_kinds_pass(tmp_path: Path) -> None:
    check_binds(spec(str(tmp_path)), forbidden_paths("/srv/agent-data"))
    volume = ContainerSpec(
        id="c1", service="p.web", image="a:1", mounts=[Mount(kind="volume", source="v", target="/v")]
    )
    check_binds(volume, forbidden_paths("/srv/agent-data"))

"""Argument parsing of the CLI: scale pairs, label changes, the compose file, server URLs."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoal.cli.deploy import compose_path, read_compose
from shoal.cli.nodes import parse_label_changes
from shoal.cli.services import parse_scale
from shoal.client.transport import server_root
from shoal.errors import ConfigError


def test_parse_scale() -> None:
    assert parse_scale("web=3") == ("web", 3)
    assert parse_scale("api-v2=0") == ("api-v2", 0)


@pytest.mark.parametrize("bad", ["web", "web=", "=3", "web=-1", "web=two", "web=1.5"])
def test_parse_scale_rejects(bad: str) -> None:
    with pytest.raises(ConfigError, match="scale"):
        parse_scale(bad)


def test_parse_labels_set_and_remove() -> None:
    got = parse_label_changes(["zone=home", "disk=ssd=fast", "gpu-", "empty="])
    assert got == {"zone": "home", "disk": "ssd=fast", "gpu": None, "empty": ""}


@pytest.mark.parametrize("bad", ["zone", "=v", "-"])
def test_parse_labels_rejects(bad: str) -> None:
    with pytest.raises(ConfigError, match="label"):
        parse_label_changes([bad])


def test_compose_path_defaults(tmp_path: Path) -> None:
    assert compose_path("x.yaml", tmp_path) == "x.yaml"
    with pytest.raises(ConfigError, match="no compose file"):
        compose_path(None, tmp_path)
    (tmp_path / "docker-compose.yml").write_text("services: {}\n")
    assert compose_path(None, tmp_path) == str(tmp_path / "docker-compose.yml")
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    assert compose_path(None, tmp_path) == str(tmp_path / "compose.yaml")


def test_read_compose_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope.yaml: No such file or directory"):
        read_compose(str(tmp_path / "nope.yaml"))


@pytest.mark.parametrize(
    ("given", "root"),
    [
        ("https://h:7443", "https://h:7443"),
        ("https://h:7443/", "https://h:7443"),
        ("https://h:7443/api/v1/", "https://h:7443"),
        ("h:7443", "https://h:7443"),
    ],
)
def test_server_root(given: str, root: str) -> None:
    assert server_root(given) == root


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["web", "--replica", "2", "--", "ls", "-l"], {"name": "web", "replica": 2, "cmd": ("ls", "-l")}),
        (
            ["web", "-i", "--", "sh", "-c", "cat"],
            {"name": "web", "interactive": True, "cmd": ("sh", "-c", "cat")},
        ),
        (
            ["web", "--", "ls", "--replica", "3"],
            {"name": "web", "replica": None, "cmd": ("ls", "--replica", "3")},
        ),
    ],
)
def test_exec_arguments(argv: list[str], expected: dict[str, object]) -> None:
    from shoal.cli.services import service_exec

    params = service_exec.make_context("exec", argv).params
    assert {k: params[k] for k in expected} == expected


def test_logs_arguments() -> None:
    from shoal.cli.services import service_logs

    params = service_logs.make_context("logs", ["web", "-f", "--since", "10m", "--tail", "5"]).params
    assert params == {"name": "web", "follow": True, "since": "10m", "tail": 5, "project": None}

"""The agent's commands: the systemd unit, one-line errors, labels."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from shoal.agent import config as cfg
from shoal.agent.commands import JoinOptions, agent, join, not_granted, render_unit
from shoal.agent.reconcilers.containers import _one_line
from shoal.errors import ShoalError


def test_unit_runs_agent_start_with_the_data_dir() -> None:
    unit = render_unit("n1", "/usr/local/bin/shoal", Path("/var/lib/shoal"))
    assert "ExecStart=/usr/local/bin/shoal agent start --data-dir /var/lib/shoal" in unit
    assert "KillMode=process" in unit  # containers (conmon) outlive an agent restart
    assert "Restart=always" in unit


def test_install_writes_the_unit(tmp_path: Path) -> None:
    node = cfg.NodeRecord("https://s:1", "n1", "c", "s", "10.210.1.0/24", "10.210.1.1", "10.210.0.0/16")
    cfg.save(cfg.AgentConfig(data_dir=tmp_path), node)
    unit = tmp_path / "shoal-agent.service"
    done = CliRunner().invoke(agent, ["install", "--data-dir", str(tmp_path), "--unit", str(unit)])
    assert done.exit_code == 0, done.output
    assert f"--data-dir {tmp_path}" in unit.read_text()


def test_install_before_join_is_one_line_error(tmp_path: Path) -> None:
    done = CliRunner().invoke(agent, ["install", "--data-dir", str(tmp_path), "--unit", str(tmp_path / "u")])
    assert done.exit_code != 0
    assert "run `shoal join` first" in done.output
    assert "Traceback" not in done.output


def test_join_with_a_malformed_token_fails_before_any_network(tmp_path: Path) -> None:
    done = CliRunner().invoke(join, ["https://127.0.0.1:9", "--token", "bogus", "--data-dir", str(tmp_path)])
    assert done.exit_code != 0
    assert "join token is malformed" in done.output
    assert not (tmp_path / cfg.NODE_FILE).exists()


def test_bad_label_is_refused(tmp_path: Path) -> None:
    token = "shoal-join.s." + "a" * 64
    done = CliRunner().invoke(
        join, ["https://127.0.0.1:9", "--token", token, "--label", "nokey", "--data-dir", str(tmp_path)]
    )
    assert done.exit_code != 0
    assert "expected k=v" in done.output


def test_one_line_messages() -> None:
    assert (
        _one_line(ShoalError("image x: layer y: entry ../z climbs out\nmore"))
        == "image x: layer y: entry ../z climbs out"
    )
    assert _one_line(ValueError("bad")) == "ValueError: bad"
    assert _one_line(KeyError()) == "KeyError"


def test_what_the_join_token_did_not_grant_is_named() -> None:
    asked = JoinOptions("https://s", "t", "n1", labels={"zone": "a", "role": "db"}, ingress=True)
    assert not_granted(asked, {"labels": {"role": "db"}, "ingress": False}) == ["zone=a", "ingress"]
    assert not_granted(asked, {"labels": {"zone": "a", "role": "db"}, "ingress": True}) == []
    assert not_granted(asked, {}) == []  # an older server says nothing: it took the request

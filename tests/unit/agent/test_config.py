"""Agent configuration: JSON round trip, overrides, unknown keys, private files."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoal.agent import config as cfg
from shoal.errors import ConfigError


def test_defaults_are_for_a_real_machine() -> None:
    config = cfg.AgentConfig()
    assert config.data_dir == Path("/var/lib/shoal")
    assert config.run_dir == Path("/run/shoal")
    assert config.state_file == Path("/var/lib/shoal/state.json")
    assert config.agent_port == 7946


def test_round_trip_and_overrides() -> None:
    config = cfg.with_overrides(
        cfg.AgentConfig(),
        ["run_dir=/tmp/x/run", "agent-port=17946", "heartbeat_s=0.5", "insecure_registries=a:1,b:2"],
    )
    assert config.run_dir == Path("/tmp/x/run")
    assert config.agent_port == 17946
    assert config.heartbeat_s == 0.5
    assert config.insecure_registries == ("a:1", "b:2")
    assert cfg.config_from_json(cfg.config_to_json(config)) == config


@pytest.mark.parametrize(
    ("pair", "match"), [("nope=1", "unknown key 'nope'"), ("agent_port=x", "number"), ("x", "key=value")]
)
def test_bad_overrides_name_the_key(pair: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        cfg.with_overrides(cfg.AgentConfig(), [pair])


def test_save_and_load_private(tmp_path: Path) -> None:
    config = cfg.AgentConfig(data_dir=tmp_path / "data")
    node = cfg.NodeRecord("https://s:1", "n1", "cred", "sec", "10.210.1.0/24", "10.210.1.1", "10.210.0.0/16")
    cfg.save(config, node)
    for name in (cfg.AGENT_FILE, cfg.NODE_FILE):
        assert ((tmp_path / "data" / name).stat().st_mode & 0o777) == 0o600
    assert cfg.load_config(tmp_path / "data") == config
    assert cfg.load_node(tmp_path / "data") == node


def test_missing_files_say_to_join(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="shoal join"):
        cfg.load_config(tmp_path)


def test_the_servers_the_cluster_named_are_kept_in_node_json(tmp_path: Path) -> None:
    config = cfg.AgentConfig(data_dir=tmp_path / "data")
    node = cfg.NodeRecord("https://s:1", "n1", "cred", "sec", "10.210.1.0/24", "10.210.1.1", "10.210.0.0/16")
    cfg.save(config, node)
    cfg.save_servers(config, node, ["https://s:1", "https://t:1"])
    assert cfg.load_node(tmp_path / "data").servers == ("https://s:1", "https://t:1")

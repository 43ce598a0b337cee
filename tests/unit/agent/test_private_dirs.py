"""Shoal's data dirs: 0700/0600 at the top, 0711 only on the way to another user's directory."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from shoal.agent.runtime.bundle import write_config_json
from shoal.private import make_private


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_data_dir_and_its_entries_become_private(tmp_path: Path) -> None:
    root = tmp_path / "shoal"
    (root / "bundles" / "web-1" / "rootfs").mkdir(parents=True, mode=0o755)
    (root / "state.json").write_text("{}")
    (root / "state.json").chmod(0o644)
    (root / "volumes" / "data").mkdir(parents=True, mode=0o777)
    (root / "volumes" / "data").chmod(0o777)
    os.symlink("/etc/passwd", root / "link")
    root.chmod(0o755)
    make_private(root)
    assert _mode(root) == 0o700 and _mode(root / "bundles") == 0o700 and _mode(root / "volumes") == 0o700
    assert _mode(root / "state.json") == 0o600
    assert _mode(root / "volumes" / "data") == 0o777  # a volume's root is the container's business
    assert _mode(Path("/etc/passwd")) == 0o644  # a symlink is not followed


def test_missing_data_dir_is_made_private(tmp_path: Path) -> None:
    make_private(tmp_path / "a" / "b")
    assert _mode(tmp_path / "a" / "b") == 0o700


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_the_way_to_postgres_own_directory_stays_traversable(tmp_path: Path) -> None:
    root = tmp_path / "shoal"
    pg = root / "server" / "postgres"
    pg.mkdir(parents=True, mode=0o700)
    os.chown(pg, 65534, 65534)
    (root / "server" / "ca.crt").write_text("x")
    make_private(root)
    assert _mode(root) == 0o711 and _mode(root / "server") == 0o711 and _mode(pg) == 0o700
    assert _mode(root / "server" / "ca.crt") == 0o644  # one level down: server start tightens it
    make_private(root / "server")
    assert _mode(root / "server" / "ca.crt") == 0o600 and _mode(root / "server") == 0o711


def test_a_bundles_config_json_is_roots_only(tmp_path: Path) -> None:
    write_config_json(tmp_path, {"process": {"env": ["SECRET=1"]}})
    assert _mode(tmp_path / "config.json") == 0o600

"""What `shoal sandbox up` clears of a sandbox brought down before in the same directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoal.sandbox.build import clear_previous_run, mounts_under
from shoal.sandbox.nodes import NodeError

# captured from /proc/self/mountinfo on the Debian 12 test machine (a node's overlay added)
MOUNTINFO = """\
22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro
24 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
61 22 0:5 / /run/netns/sbx-n1 rw shared:5 - nsfs nsfs rw
90 22 0:52 / {root}/nodes/n1/bundles/web-1/rootfs rw,relatime - overlay overlay rw,lowerdir=/a
91 22 0:53 / {root}/old\\040logs rw,relatime - tmpfs tmpfs rw
"""


def _leftovers(root: Path) -> None:
    (root / "nodes" / "n1" / "server").mkdir(parents=True)
    (root / "nodes" / "n1" / "server" / "server.json").write_text("{}")
    (root / "run").mkdir()
    (root / "run" / "n1.ready").touch()
    (root / "logs").mkdir()
    (root / "logs" / "n1-agent.log").write_text("old\n")
    (root / "image-cache" / "x").mkdir(parents=True)


def test_a_new_up_starts_from_empty_node_dirs_and_keeps_the_image_cache(tmp_path: Path) -> None:
    _leftovers(tmp_path)
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(MOUNTINFO.format(root="/elsewhere"))
    clear_previous_run(tmp_path, mountinfo)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image-cache", "mountinfo"]
    assert (tmp_path / "image-cache" / "x").is_dir()


def test_nothing_is_removed_while_a_node_dir_is_still_mounted(tmp_path: Path) -> None:
    _leftovers(tmp_path)
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(MOUNTINFO.format(root=tmp_path.resolve()))
    with pytest.raises(NodeError, match=r"web-1/rootfs is still mounted: run `shoal sandbox down"):
        clear_previous_run(tmp_path, mountinfo)
    assert (tmp_path / "nodes" / "n1" / "server" / "server.json").exists()


def test_mount_points_are_matched_by_path_component() -> None:
    text = MOUNTINFO.format(root="/srv/sbx")
    assert mounts_under(text, [Path("/srv/sbx/nodes")]) == ["/srv/sbx/nodes/n1/bundles/web-1/rootfs"]
    assert mounts_under(text, [Path("/srv/sbx/node")]) == []
    assert mounts_under(text, [Path("/srv/sbx/old logs")]) == ["/srv/sbx/old logs"]

"""runtime.conmon and runtime.overlay: argument lists, the sync message, safe image reads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shoal.agent.runtime import conmon, overlay


def test_conmon_args() -> None:
    paths = conmon.ConmonPaths(Path("/b/c1"), Path("/l/c1.log"), Path("/s/exits"), Path("/s/runc"))
    argv = conmon.conmon_args("conmon", "/usr/sbin/runc", "c1", paths)
    assert argv[0] == "conmon"
    joined = " ".join(argv)
    assert "-r /usr/sbin/runc --runtime-arg --root --runtime-arg /s/runc" in joined
    assert "-b /b/c1 -p /b/c1/container.pid -P /b/c1/conmon.pid" in joined
    assert "--exit-dir /s/exits -l k8s-file:/l/c1.log" in joined


def test_parse_sync() -> None:
    assert conmon.parse_sync('{"data": 4242}\n') == (4242, "")
    assert conmon.parse_sync('{"data": -1, "message": "no such file"}') == (-1, "no such file")


def test_overlay_options_reverse_layers() -> None:
    opts = overlay.overlay_options([Path("/l/base"), Path("/l/top")], Path("/b/u"), Path("/b/w"))
    assert opts == "lowerdir=/l/top:/l/base,upperdir=/b/u,workdir=/b/w"


@pytest.mark.parametrize("lower", [[], [Path("/l/a,b")], [Path("/l/a:b")]])
def test_overlay_options_refuse_unusable_paths(lower: list[Path]) -> None:
    with pytest.raises(overlay.OverlayError):
        overlay.overlay_options(lower, Path("/b/u"), Path("/b/w"))


def test_read_image_file_does_not_follow_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    assert overlay.read_image_file(root, "etc/passwd").startswith("root:")
    secret = tmp_path / "host-secret"
    secret.write_text("host only")
    (root / "etc" / "group").symlink_to(secret)
    assert overlay.read_image_file(root, "etc/group") == ""
    os.rename(root / "etc", root / "etc2")
    (root / "etc").symlink_to(root / "etc2")
    assert overlay.read_image_file(root, "etc/passwd") == ""
    assert overlay.read_image_file(tmp_path / "rootfs", "missing/file") == ""

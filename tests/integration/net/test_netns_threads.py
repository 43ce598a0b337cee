"""Namespaces made and entered on threads of their own (agent/sys/netlink, agent/net/nsthread).

create_netns unshares a short-lived thread's netns and binds it; in_own_netns opens a netlink
socket on a thread set into a netns. Both must leave the calling thread where it was, and the
socket must live in the target netns, not the one of the thread that later uses it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.agent.sys.netlink import Netlink, NetlinkFailure, create_netns, in_own_netns, remove_netns

pytestmark = pytest.mark.integration


@pytest.fixture
def netns_dir() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="sbx-nsthread-"))
    try:
        yield base
    finally:
        for entry in sorted(base.iterdir(), reverse=True):
            remove_netns(entry)
        subprocess.run(["umount", str(base)], capture_output=True, check=False)  # the shared-mount bind
        shutil.rmtree(base, ignore_errors=True)


def own_netns() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


def links_seen_by_ip(path: Path) -> list[str]:
    found = subprocess.run(["nsenter", f"--net={path}", "ip", "-j", "link"], capture_output=True, check=True)
    return [link["ifname"] for link in json.loads(found.stdout)]


def test_create_netns_binds_a_new_netns_and_leaves_ours_alone(netns_dir: Path) -> None:
    before = own_netns()
    assert create_netns(netns_dir / "a") is True
    assert create_netns(netns_dir / "b") is True
    assert own_netns() == before
    inodes = {os.stat(netns_dir / name).st_ino for name in ("a", "b")}
    assert len(inodes) == 2 and before not in inodes
    assert links_seen_by_ip(netns_dir / "a") == ["lo"]


def test_create_netns_keeps_one_that_exists(netns_dir: Path) -> None:
    create_netns(netns_dir / "a")
    inode = os.stat(netns_dir / "a").st_ino
    assert create_netns(netns_dir / "a") is False
    assert os.stat(netns_dir / "a").st_ino == inode


def test_in_own_netns_talks_to_that_netns(netns_dir: Path) -> None:
    create_netns(netns_dir / "a")

    def bring_lo_up(inside: Netlink) -> list[str]:
        inside.set_link_at(1, state="up")
        return sorted(inside.links())

    assert in_own_netns(netns_dir / "a", bring_lo_up) == ["lo"]
    lo = json.loads(
        subprocess.run(
            ["nsenter", f"--net={netns_dir / 'a'}", "ip", "-j", "link", "show", "lo"],
            capture_output=True,
            check=True,
        ).stdout
    )[0]
    assert "UP" in lo["flags"]


def test_in_own_netns_passes_errors_back(netns_dir: Path) -> None:
    create_netns(netns_dir / "a")
    with pytest.raises(NetlinkFailure, match="no link eth0"):
        in_own_netns(netns_dir / "a", lambda inside: inside.index("eth0"))

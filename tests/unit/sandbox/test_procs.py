"""Choosing the sandbox's processes by namespace, and finding runc containers under a node's /run."""

from __future__ import annotations

from pathlib import Path

from shoal.sandbox.procs import ProcNs, mount_holders, select_pids
from shoal.sandbox.teardown import runc_containers

HOST_NET, HOST_MNT = 1000, 2000
NODE_NET, NODE_MNT = 1001, 2001
PROCS = [
    ProcNs(1, HOST_NET, HOST_MNT),  # init
    ProcNs(50, HOST_NET, HOST_MNT),  # us
    ProcNs(60, NODE_NET, NODE_MNT),  # a node's holder
    ProcNs(61, NODE_NET, NODE_MNT),  # its agent
    ProcNs(62, 1002, NODE_MNT),  # a process of the node that left its netns
    ProcNs(70, 1003, 2003),  # a container (own namespaces)
    ProcNs(80, 1004, HOST_MNT),  # a registry: sbx-inet netns, host mounts
]


def test_selects_netns_members_and_their_private_mount_namespace() -> None:
    assert select_pids(PROCS, {NODE_NET, 1004}, me=50) == [60, 61, 62, 80]


def test_host_mount_namespace_never_pulls_in_host_processes() -> None:
    assert 1 not in select_pids(PROCS, {1004}, me=50)


def test_never_selects_itself() -> None:
    procs = [*PROCS, ProcNs(90, NODE_NET, NODE_MNT)]
    assert 90 not in select_pids(procs, {NODE_NET}, me=90)


def test_one_holder_per_private_mount_namespace() -> None:
    assert mount_holders(PROCS, NODE_NET, HOST_MNT) == {NODE_MNT: 60}
    assert mount_holders(PROCS, 1004, HOST_MNT) == {}


def test_runc_containers_under_a_node_run(tmp_path: Path) -> None:
    for path in ("shoal/runc/web-1/state.json", "runc/x/state.json", "other/file"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("{}")
    assert runc_containers(tmp_path) == [("/run/runc", "x"), ("/run/shoal/runc", "web-1")]


def test_the_oldest_process_of_a_mount_namespace_is_its_holder() -> None:
    procs = [ProcNs(70, NODE_NET, NODE_MNT, start=500), ProcNs(90, NODE_NET, NODE_MNT, start=100)]
    assert mount_holders(procs, NODE_NET, HOST_MNT) == {NODE_MNT: 90}

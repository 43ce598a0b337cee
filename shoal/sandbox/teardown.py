"""`shoal sandbox down`: remove everything the sandbox made, from any process, any number of times.

Order: runc containers inside each node (they have their own namespaces, so they are found
through the node's runc roots), then every process in an ``sbx-*`` namespace or a node's mount
namespace, then the namespaces and the host link (links, routes, nft tables and mounts inside
the namespaces vanish with them), the nodes' emptied cgroups, then the record. It works without
``sandbox.json``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from shoal.sandbox import net, procs, state
from shoal.sandbox.nodes import enter

CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PREFIX = "shoal-sbx-"
RUNC_SEARCH = tuple("*/" * depth + "state.json" for depth in range(1, 6))


def down(directory: Path) -> list[str]:
    """Tear the sandbox down; returns one line per thing removed."""
    inodes = procs.namespace_inodes({n: net.netns_path(n) for n in net.sandbox_namespaces()})
    sandbox_nets = set(inodes.values())
    processes = procs.read_processes()
    host_mnt = procs.ns_inode("/proc/self/ns/mnt") or 0
    holders = {
        h: name
        for name, ino in inodes.items()
        for h in procs.mount_holders(processes, ino, host_mnt).values()
    }
    # Agents first, so none restarts a container while its runc state is being removed.
    others = [pid for pid in procs.select_pids(processes, sandbox_nets, os.getpid()) if pid not in holders]
    removed = [f"process {pid}" for pid in procs.end_processes(others)]
    for holder, name in holders.items():
        removed += remove_containers(holder, name)
    for _ in range(3):
        left = procs.select_pids(procs.read_processes(), sandbox_nets, os.getpid())
        left += cgroup_pids()
        if not left:
            break
        removed += [f"process {pid}" for pid in procs.end_processes(left)]
    removed += net.remove_network()
    removed += remove_cgroups()
    state.forget(directory)
    return removed


def cgroup_pids(root: Path = CGROUP_ROOT) -> list[int]:
    """Processes still in the nodes' cgroups (``shoal-sbx-*``): containers whose runc state is gone."""
    pids: set[int] = set()
    for procs_file in root.glob(f"pids/{CGROUP_PREFIX}*/**/cgroup.procs"):
        try:
            pids |= {int(line) for line in procs_file.read_text().split()}
        except (OSError, ValueError):
            continue
    return sorted(pids)


def remove_cgroups(root: Path = CGROUP_ROOT) -> list[str]:
    """Remove the nodes' emptied cgroup parents (``shoal-sbx-*``) from every hierarchy."""
    removed = []
    for parent in [*root.glob(f"{CGROUP_PREFIX}*"), *root.glob(f"*/{CGROUP_PREFIX}*")]:
        for directory in sorted((p for p in parent.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            _rmdir(directory)
        if _rmdir(parent):
            removed.append(f"cgroup {parent.relative_to(root)}")
    return removed


def _rmdir(path: Path) -> bool:
    try:
        path.rmdir()
    except OSError:
        return False
    return True


def runc_containers(run_dir: Path) -> list[tuple[str, str]]:
    """(runc root, container id) pairs found under a node's /run (seen from the host)."""
    found = []
    for pattern in RUNC_SEARCH:
        for state_file in run_dir.glob(pattern):
            container = state_file.parent
            root = "/run/" + str(container.parent.relative_to(run_dir))
            found.append((root.rstrip("/."), container.name))
    return sorted(set(found))


def remove_containers(holder_pid: int, node: str) -> list[str]:
    """Force-delete every runc container under the node's /run, through the node's namespaces."""
    removed = []
    for root, cid in runc_containers(Path(f"/proc/{holder_pid}/root/run")):
        argv = [*enter(holder_pid), "runc", "--root", root, "delete", "--force", cid]
        subprocess.run(argv, capture_output=True, check=False, timeout=30)
        removed.append(f"container {cid} ({node}, {root})")
    return removed

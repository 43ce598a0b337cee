"""`shoal sandbox up` without the cluster: network, registry, node holders, example image.

The steps run in order and record what they made in ``sandbox.json`` as they go, so a failure
half-way leaves a record `down` can use; `up` tears down on failure before it reports the error.
`cluster.py` then runs the server and agents on the nodes this made.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from shoal.sandbox import images, net, state
from shoal.sandbox.layout import INET_NS, Layout, NodePlan
from shoal.sandbox.nodes import NodeError, start_holder
from shoal.sandbox.registry import start_registry
from shoal.sandbox.state import SandboxNode, SandboxState

EXAMPLE_IMAGE = "example/hello"
EXAMPLE_TAG = "latest"
# What a sandbox keeps per run; the image cache and the registry's blobs are kept for the next `up`.
PER_RUN_DIRS = ("logs", "run", "nodes")
MOUNTINFO = Path("/proc/self/mountinfo")


def build_topology(layout: Layout, directory: Path) -> SandboxState:
    """Make the network, the registry and every node's holder; returns the record."""
    clear_previous_run(directory)
    for sub in PER_RUN_DIRS:
        (directory / sub).mkdir(parents=True, exist_ok=True)
    record = SandboxState(dir=str(directory), registry=layout.registry, nat_mode=layout.nat_mode)
    state.save(record)
    net.build_network(layout)
    start_sandbox_registry(record, directory)
    for node in layout.nodes:
        holder = start_holder(node, directory)
        record.nodes.append(node_record(node, holder))
        state.save(record)
    return record


def clear_previous_run(directory: Path, mountinfo: Path = MOUNTINFO) -> None:
    """Remove what a sandbox brought down in `directory` left: its nodes' state (a server already
    initialised, old credentials), logs and ready files. Refuses while anything is mounted there."""
    targets = [directory / sub for sub in PER_RUN_DIRS]
    mounted = mounts_under(mountinfo.read_text(), targets)
    if mounted:
        raise NodeError(f"{mounted[0]} is still mounted: run `shoal sandbox down --dir {directory}` first")
    for target in targets:
        shutil.rmtree(target, ignore_errors=True)


def mounts_under(mountinfo: str, roots: list[Path]) -> list[str]:
    """Mount points (field 5 of /proc/self/mountinfo) at or below any of `roots`."""
    points = [line.split()[4].replace("\\040", " ") for line in mountinfo.splitlines() if line.strip()]
    prefixes = [str(root.resolve()) for root in roots]
    return [p for p in points if any(p == r or p.startswith(r + "/") for r in prefixes)]


def node_record(node: NodePlan, holder_pid: int) -> SandboxNode:
    fields = {"name": node.name, "netns": node.netns, "address": node.address}
    return SandboxNode(**fields, nat=node.nat, ingress=node.ingress, holder_pid=holder_pid)


def start_sandbox_registry(record: SandboxState, directory: Path) -> None:
    """Debian's docker-registry inside sbx-inet, on the address every node can reach."""
    registry = start_registry(directory / "registry", record.registry, prefix=net.in_netns(INET_NS))
    record.registry_pid = registry.pid
    state.save(record)


def push_example_image(record: SandboxState, directory: Path) -> str:
    """Build the example app offline and push it to the sandbox registry; returns its reference."""
    layout_dir = images.cached_build(images.example_app_spec(), directory / "image-cache", EXAMPLE_TAG)
    ref = f"{record.registry}/{EXAMPLE_IMAGE}:{EXAMPLE_TAG}"
    try:
        images.push(layout_dir, EXAMPLE_TAG, ref)
    except RuntimeError as exc:
        raise NodeError(f"pushing the example image to {record.registry}: {exc}") from exc
    return ref

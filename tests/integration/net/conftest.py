"""One small cluster for the node-networking tests: nodes a, b public; c, d behind a NAT router."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.integration.net.topology import Topology

SERVICES = {"a": ["web-1"], "b": ["web-2"], "c": ["api-1"], "d": ["api-2"]}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Topology]:
    if shutil.which("wireguard-go") is None:
        pytest.skip("wireguard-go is not installed")
    topology = Topology(["a", "b"], ["c", "d"])
    try:
        topology.build()
        topology.start(SERVICES)
        yield topology
    finally:
        topology.close()

"""One small cluster for the node-networking tests: nodes a, b public; c, d behind a NAT router."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.net.topology import Topology, running_cluster

SERVICES = {"a": ["web-1"], "b": ["web-2"], "c": ["api-1"], "d": ["api-2"]}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Topology]:
    with running_cluster(SERVICES) as topology:
        yield topology

"""`sandbox up --servers N`: servers run on public nodes only, and their database's DSN."""

from __future__ import annotations

import pytest

from shoal.sandbox.nodes import NodeError
from shoal.sandbox.servers import DB_PORT, check_servers, database_dsn
from shoal.sandbox.state import SandboxNode


def test_servers_fit_on_the_public_nodes() -> None:
    check_servers(1, 1)
    check_servers(2, 2)
    for bad in (0, 3):
        with pytest.raises(NodeError, match="--servers must be between 1 and 2"):
            check_servers(bad, 2)


def test_the_servers_share_one_database_on_n1() -> None:
    n1 = SandboxNode(name="n1", netns="sbx-n1", address="203.0.113.11", nat=False, ingress=False)
    assert database_dsn(n1) == f"host=203.0.113.11 port={DB_PORT} dbname=shoal user=postgres"

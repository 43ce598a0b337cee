"""The server's part of relaying: ranked candidates and relayed nodes in NAT'd nodes' states, and
an admin's `shoal.relay=false` taking a public node off the list (every node told at once)."""

from __future__ import annotations

from typing import Any

from tests.integration.control.helpers import join, node_client, wait_for
from tests.support.server_fixtures import Server


def _state(server: Server, joined: dict[str, Any], name: str) -> dict[str, Any]:
    with node_client(server, joined) as client:
        got: dict[str, Any] = client.get(f"/api/v1/nodes/{name}/state").json()
        return got


def test_natted_nodes_get_every_allowed_relay_and_lose_a_forbidden_one(server: Server) -> None:
    join(server, "ra", endpoint="192.0.2.1:51820")
    join(server, "rb", endpoint="192.0.2.2:51820")
    home = join(server, "hc", endpoint=None)
    join(server, "hd", endpoint=None)
    first = wait_for(lambda: (s := _state(server, home, "hc"))["relays"] and s, what="relays")
    assert first["relays"] == ["ra", "rb"]
    assert [p["name"] for p in first["relayed"]] == ["hd"]
    with server.client() as admin:
        r = admin.post("/api/v1/nodes/ra/labels", json={"labels": {"shoal.relay": "false"}})
        assert r.status_code == 200, r.text
    later = wait_for(lambda: (s := _state(server, home, "hc"))["relays"] == ["rb"] and s, what="no ra")
    assert later["version"] > first["version"]
    peers = {p["name"]: p for p in later["peers"]}
    assert peers["rb"]["allowed_ips"] == [peers["rb"]["subnet"], later["relayed"][0]["subnet"]]

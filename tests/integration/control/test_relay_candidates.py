"""The server's part of relaying: ranked candidates and relayed nodes in NAT'd nodes' states, and
an admin's `shoal.relay=false` taking a public node off the list (every node told at once). The
public nodes here join with a join token that marks them as relays (`--relay`)."""

from __future__ import annotations

from typing import Any

from tests.integration.control.helpers import join as join_any
from tests.integration.control.helpers import node_client, wait_for
from tests.support.server_fixtures import Server


def join(server: Server, name: str, endpoint: str | None) -> dict[str, Any]:
    """Join `name`; a public node with a join token that makes it a relay."""
    if endpoint is None:
        return join_any(server, name, endpoint=None)
    with server.client() as admin:
        made = admin.post("/api/v1/join-tokens", json={"relay": True})
        assert made.status_code == 200, made.text
    return join_any(server, name, endpoint=endpoint, token=made.json()["token"])


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


def _report(server: Server, joined: dict[str, Any], name: str, **fields: Any) -> None:
    body = {"node": name, "capacity": {"cpus": 4, "memory_bytes": 8 << 30}, **fields}
    with node_client(server, joined) as client:
        r = client.post(f"/api/v1/nodes/{name}/status", json=body)
        assert r.status_code == 200, r.text


def test_natted_nodes_learn_where_to_try_each_other_from_what_relays_see(server: Server) -> None:
    relay = join(server, "sa", endpoint="192.0.2.1:51820")
    c, d = join(server, "sc", endpoint=None), join(server, "sd", endpoint=None)
    seen = [
        {"public_key": "key-sc", "name": "sc", "endpoint": "198.51.100.9:40001"},
        {"public_key": "key-sd", "name": "sd", "endpoint": "198.51.100.9:40002"},
    ]
    _report(server, relay, "sa", peers=seen)
    _report(server, d, "sd", lan_endpoint="192.168.1.4:51820")
    _report(server, c, "sc", lan_endpoint="192.168.1.3:51820")
    got = wait_for(
        lambda: (s := _state(server, c, "sc"))["relayed"] and s["relayed"][0]["endpoint"] and s, what="lan"
    )
    assert got["relayed"][0]["endpoint"] == "192.168.1.4:51820"  # one NAT: the LAN address
    seen[1]["endpoint"] = "198.51.100.7:40002"  # sd moved behind another NAT
    _report(server, relay, "sa", peers=seen)
    wait_for(
        lambda: _state(server, c, "sc")["relayed"][0]["endpoint"] == "198.51.100.7:40002", what="observed"
    )


def test_the_relay_natted_nodes_report_using_is_ranked_first(server: Server) -> None:
    join(server, "ua", endpoint="192.0.2.1:51820")
    join(server, "ub", endpoint="192.0.2.2:51820")
    c, d = join(server, "uc", endpoint=None), join(server, "ud", endpoint=None)
    wait_for(lambda: _state(server, c, "uc")["relays"] == ["ua", "ub"], what="by name")
    moved = [{"public_key": "key-uc", "name": "uc", "path": "relayed", "via": "ub"}]
    _report(server, d, "ud", peers=moved)  # ud failed over to ub while ua was away
    wait_for(lambda: _state(server, c, "uc")["relays"] == ["ub", "ua"], what="the relay in use first")

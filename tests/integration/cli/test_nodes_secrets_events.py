"""The CLI against a real server: nodes (with a scripted node), secrets, events (also -f)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from shoal.cli.deploy import EventWake
from shoal.client import Client
from shoal.model.status import PeerStatus
from tests.integration.cli.conftest import ScriptedNode, Shoal
from tests.support.server_fixtures import Server


def test_node_ls_inspect_label_drain_activate_rm(shoal: Shoal, node: ScriptedNode) -> None:
    listed = json.loads(shoal("node", "ls", "-o", "json").stdout)
    assert [n["name"] for n in listed] == [node.name] and listed[0]["state"] == "ready"
    table = shoal("node", "ls").stdout
    assert "NAME" in table and node.name in table and "ready" in table
    labelled = json.loads(shoal("node", "label", node.name, "zone=home", "disk=ssd", "-o", "json").stdout)
    assert labelled["labels"] == {"zone": "home", "disk": "ssd"}
    assert shoal("node", "label", node.name, "disk-").stdout.strip() == f"node {node.name} labels: zone=home"
    assert shoal("node", "drain", node.name).exit_code == 0
    assert json.loads(shoal("node", "inspect", node.name, "-o", "json").stdout)["availability"] == "drain"
    assert shoal("node", "activate", node.name).exit_code == 0
    shown = shoal("node", "inspect", node.name)
    assert "availability: active" in shown.stdout and "zone=home" in shown.stdout
    missing = shoal("node", "inspect", "shx-nope")
    assert missing.exit_code == 1 and len(missing.stderr.splitlines()) == 1 and "shx-nope" in missing.stderr
    assert shoal("node", "rm", node.name).stdout.strip() == f"removed node {node.name}"
    assert json.loads(shoal("node", "ls", "-o", "json").stdout) == []


def test_node_ls_and_inspect_show_each_peers_path(shoal: Shoal, node: ScriptedNode) -> None:
    with node.lock:
        node.peers = [
            PeerStatus(public_key="k1", name="shx-r1", endpoint="192.0.2.1:51820"),
            PeerStatus(public_key="k9", name="shx-h9", path="relayed", via="shx-r1"),
        ]
        node.report(node.containers)
    listed = json.loads(shoal("node", "ls", "-o", "json").stdout)
    assert listed[0]["relay"] == "shx-r1"
    assert "RELAY" in shoal("node", "ls").stdout
    detail = json.loads(shoal("node", "inspect", node.name, "-o", "json").stdout)
    assert [(p["name"], p["path"], p["via"]) for p in detail["peers"]] == [
        ("shx-r1", "direct", ""),
        ("shx-h9", "relayed", "shx-r1"),
    ]
    shown = shoal("node", "inspect", node.name).stdout
    assert "relayed via shx-r1" in shown and "direct" in shown


def test_node_join_token_lets_a_node_join(server: Server, shoal: Shoal) -> None:
    made = json.loads(shoal("node", "join-token", "--uses", "1", "-o", "json").stdout)
    assert made["token"].startswith("shoal-join.") and made["token"] != server.join_token
    joined = ScriptedNode(server, "shx-n2", made["token"])
    joined.join()
    try:
        assert [n["name"] for n in json.loads(shoal("node", "ls", "-o", "json").stdout)] == ["shx-n2"]
    finally:
        joined.close()
    table = shoal("node", "join-token")
    assert table.stdout.startswith("shoal-join.") and f"shoal join {server.url} --token" in table.stderr


def test_token_create_role_join_grants_labels_ingress_and_relay(server: Server, shoal: Shoal) -> None:
    args = ["token", "create", "--role", "join", "--label", "role=db", "--ingress", "--relay", "-o", "json"]
    made = json.loads(shoal(*args).stdout)
    assert made["role"] == "join" and made["token"].startswith("shoal-join.")
    assert (made["labels"], made["ingress"], made["relay"]) == ({"role": "db"}, True, True)
    joined = ScriptedNode(server, "shx-db", made["token"])
    joined.join()
    try:
        listed = json.loads(shoal("node", "ls", "-o", "json").stdout)[0]
        assert (listed["labels"], listed["ingress"], listed["is_relay"]) == ({"role": "db"}, True, False)
        said = shoal("node", "relay", "shx-db", "on").stdout.strip()
        assert said == "node shx-db relay on (it relays once it has a public endpoint)"  # NAT'd
        assert shoal("node", "relay", "shx-db", "off").stdout.strip() == "node shx-db relay off"
        assert json.loads(shoal("node", "ingress", "shx-db", "off", "-o", "json").stdout)["ingress"] is False
    finally:
        joined.close()


def test_secret_create_ls_rm_never_prints_value(shoal: Shoal, tmp_path: Path) -> None:
    value = "s3cr3t-shx-value"
    assert shoal("secret", "create", "db-pass", input=value).stdout.strip() == "stored secret db-pass"
    src = tmp_path / "key.pem"
    src.write_bytes(b"\x00binary-shx-value\xff")
    assert shoal("secret", "create", "tls-key", "--from-file", str(src)).exit_code == 0
    table, as_json = shoal("secret", "ls"), shoal("secret", "ls", "-o", "json")
    assert [s["name"] for s in json.loads(as_json.stdout)] == ["db-pass", "tls-key"]
    for out in (table.stdout, as_json.stdout):
        assert value not in out and "binary-shx-value" not in out
    assert "db-pass" in table.stdout
    assert shoal("secret", "rm", "db-pass", "tls-key").exit_code == 0
    assert json.loads(shoal("secret", "ls", "-o", "json").stdout) == []
    bad = shoal("secret", "create", "bad name!", input="x")
    assert bad.exit_code == 1 and bad.stderr.startswith("error: name: ")


def test_events_list(shoal: Shoal) -> None:
    shoal("token", "create", "--role", "viewer", "--name", "shx-ev")
    shoal("secret", "create", "shx-ev-secret", input="v")
    events = json.loads(shoal("events", "-o", "json").stdout)
    kinds = [e["kind"] for e in events]
    assert kinds.index("token.created") < kinds.index("secret.created")
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    assert "secret shx-ev-secret stored" in shoal("events").stdout


def _readline(proc: subprocess.Popen[str], timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line:
            return line
        time.sleep(0.05)
    raise AssertionError("no event line in time")


def test_events_follow_streams_new_events(server: Server, shoal: Shoal) -> None:
    shoal("secret", "create", "shx-before", input="v")
    env = {**os.environ, **shoal.env}
    proc = subprocess.Popen(
        [sys.executable, "-m", "shoal", "events", "-f", "-o", "json", "--limit", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert json.loads(_readline(proc))["subject"] == "shx-before"
        shoal("secret", "create", "shx-after", input="v")
        assert json.loads(_readline(proc))["subject"] == "shx-after"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_deploy_wait_is_woken_by_the_event_stream_and_closes_it(server: Server, shoal: Shoal) -> None:
    """`shoal deploy` pauses between polls on EventWake: an event after `since` wakes it."""
    shoal("secret", "create", "shx-wake-old", input="v")
    with Client(server.url, server.admin_token, Path(server.ca)) as api:
        since = max(e.id for e in api.events(limit=1))
        wake = EventWake(Client(server.url, server.admin_token, Path(server.ca)), since)
        try:
            shoal("secret", "create", "shx-wake-new", input="v")
            assert wake.wait(30.0)
        finally:
            wake.close()
        wake.thread.join(10)
        assert not wake.thread.is_alive()  # closing the client ends the stream's thread

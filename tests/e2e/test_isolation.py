"""What a deploy file cannot do to a node, tried on the sandbox as an operator.

- A published port that is the mesh's WireGuard port (51820/udp) or the API's is refused at deploy
  with one line naming the key and its line.
- A port published on 127.0.0.1 of n2 answers on n2 itself, not from n1; the same container's
  port published on every address answers from n1 (the path works).
- The cloud metadata address is unreachable from a container: 169.254.169.254 (and, as the
  control, 169.254.170.1) on n1's loopback, routed to from n2 — only inside the sandbox's own
  namespaces; the control answers, the metadata address does not, until the policy allows it.
- A container that takes its neighbour's address (added inside its netns by the node's root)
  and pings a third container from it gets nothing through: a counter in the target's netns
  sees no echo request from the neighbour's address, while its own address gets through.
- Two replicas that publish the same host port cannot share a node: the second is not placed,
  and a `replica.unplaced` event (and `shoal ps`) says why.
Everything is removed at the end (project, addresses, routes, policy), even on failure.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.helpers import SHOAL, Sandbox, wait_for

PROJECT = "isop"
METADATA = "169.254.169.254"
CONTROL = "169.254.170.1"
ISOP = """services:
  local:
    image: {image}
    ports: ["127.0.0.1:18081:8080", "18082:8080"]
    deploy: {{placement: {{constraints: ["node.hostname == n2"]}}}}
  spoofer:
    image: {image}
    deploy: {{placement: {{constraints: ["node.hostname == n2"]}}}}
  target:
    image: {image}
    deploy: {{placement: {{constraints: ["node.hostname == n2"]}}}}
  victim:
    image: {image}
    deploy: {{placement: {{constraints: ["node.hostname == n2"]}}}}
  twice:
    image: {image}
    ports: ["18090:8080"]
    deploy: {{replicas: 2, placement: {{constraints: ["node.hostname == n1"]}}}}
"""
RESERVED = """services:
  mesh:
    image: {image}
    ports:
      - "{port}"
"""


def _as(cluster: Sandbox, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**cluster.env, "SHOAL_TOKEN": token}
    return subprocess.run([*SHOAL, *args], capture_output=True, text=True, check=False, timeout=300, env=env)


def _image(cluster: Sandbox) -> str:
    return f"{cluster.status['registry']}/example/hello:latest"


@pytest.fixture(scope="module")
def operator(cluster: Sandbox) -> Iterator[str]:
    made = cluster.shoal_json("token", "create", "--role", "operator", "--name", "e2e-isolation")
    try:
        yield str(made["token"])
    finally:
        cluster.shoal("token", "rm", str(made["id"]))


@pytest.fixture(scope="module")
def deployed(
    cluster: Sandbox, operator: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """The project, up (but for `twice`'s second replica); service -> its replica's address."""
    path = tmp_path_factory.mktemp("isop") / "compose.yaml"
    path.write_text(ISOP.format(image=_image(cluster)))
    try:
        got = _as(cluster, operator, "deploy", "-f", str(path), "-p", PROJECT, "--detach")
        assert got.returncode == 0, got.stderr
        wait_for(lambda: len(_addresses(cluster)) == 5, 240, "isop's replicas running")
        yield _addresses(cluster)
    finally:
        cluster.shoal("project", "rm", PROJECT)


def _addresses(cluster: Sandbox) -> dict[str, str]:
    rows = cluster.shoal_json("ps")
    return {
        str(r["service"]): str(r["ip"])
        for r in rows
        if r.get("project") == PROJECT and r["state"] == "running" and r.get("ip")
    }


@pytest.mark.parametrize(
    ("port", "holder"), [("51820:51820/udp", "the mesh's WireGuard port"), ("8443:80", "the shoal API")]
)
def test_a_reserved_port_is_refused_with_key_and_line(
    cluster: Sandbox, operator: str, tmp_path: Path, port: str, holder: str
) -> None:
    (tmp_path / "compose.yaml").write_text(RESERVED.format(image=_image(cluster), port=port))
    got = _as(cluster, operator, "deploy", "-f", str(tmp_path / "compose.yaml"), "-p", "isor", "--detach")
    assert got.returncode == 1 and len(got.stderr.strip().splitlines()) == 1, got.stderr
    assert "services.mesh.ports[0]" in got.stderr and "(line 5)" in got.stderr, got.stderr
    assert f"is reserved for {holder}" in got.stderr, got.stderr


def _get(cluster: Sandbox, node: str, url: str) -> str:
    return cluster.exec(node, "curl", "-s", "-m", "3", url).stdout


def test_a_port_on_127_0_0_1_answers_on_its_node_only(cluster: Sandbox, deployed: dict[str, str]) -> None:
    n2 = cluster.node("n2")["address"]
    wait_for(
        lambda: "hello from" in _get(cluster, "n2", "http://127.0.0.1:18081/"), 60, "127.0.0.1:18081 on n2"
    )
    assert "hello from" in _get(cluster, "n1", f"http://{n2}:18082/")  # every address: the path works
    assert _get(cluster, "n1", f"http://{n2}:18081/") == ""


@pytest.fixture
def link_local(cluster: Sandbox) -> Iterator[None]:
    """The metadata address and a control beside it on n1's loopback, routed to from n2."""
    n1 = cluster.node("n1")["address"]
    added: list[tuple[str, ...]] = []
    try:
        for address in (METADATA, CONTROL):
            for node, command in (
                ("n1", ("ip", "addr", "add", f"{address}/32", "dev", "lo")),
                ("n2", ("ip", "route", "add", f"{address}/32", "via", n1)),
            ):
                assert cluster.exec(node, *command).returncode == 0, command
                added.append((node, *command))
        yield
    finally:
        for node, *command in reversed(added):
            cluster.exec(node, *[("del" if word == "add" else word) for word in command])


def _pings(cluster: Sandbox, service: str, address: str, *extra: str) -> bool:
    argv = ["service", "exec", service, "-p", PROJECT, "--", "ping", "-c", "2", "-W", "1", *extra, address]
    return " 0% packet loss" in cluster.shoal(*argv, timeout=30).stdout


def _set_policy(cluster: Sandbox, folder: Path, text: str) -> None:
    (folder / "policy.yaml").write_text(text)
    assert cluster.shoal("policy", "set", "-f", str(folder / "policy.yaml")).returncode == 0


def test_cloud_metadata_is_unreachable_unless_the_policy_allows_it(
    cluster: Sandbox, deployed: dict[str, str], link_local: None, tmp_path: Path
) -> None:
    wait_for(lambda: _pings(cluster, "spoofer", CONTROL), 30, "the control address from a container")
    assert not _pings(cluster, "spoofer", METADATA)
    try:
        _set_policy(cluster, tmp_path, "metadata: true\n")
        wait_for(lambda: _pings(cluster, "spoofer", METADATA), 30, "metadata once the policy allows it")
    finally:
        _set_policy(cluster, tmp_path, "grants: []\n")
    wait_for(lambda: not _pings(cluster, "spoofer", METADATA), 30, "metadata closed again")


def _netns_of(cluster: Sandbox, address: str) -> str:
    """The netns (on n2) whose eth0 holds ``address``."""
    script = (
        'for ns in /run/netns/*; do ip -n "$(basename "$ns")" -4 -o addr show dev eth0 2>/dev/null'
        f" | grep -q ' {address}/' && echo \"$ns\"; done"
    )
    found = cluster.exec("n2", "sh", "-c", script).stdout.split()
    assert len(found) == 1, found
    return found[0]


def _in(cluster: Sandbox, netns: str, *cmd: str) -> subprocess.CompletedProcess[str]:
    return cluster.exec("n2", "nsenter", f"--net={netns}", *cmd)


def _echoes_from(cluster: Sandbox, netns: str) -> int:
    listing = json.loads(_in(cluster, netns, "nft", "-j", "list", "table", "ip", "seen").stdout)
    rule = next(i["rule"] for i in listing["nftables"] if "rule" in i)
    return int(next(e["counter"] for e in rule["expr"] if "counter" in e)["packets"])


def test_a_container_cannot_send_from_its_neighbours_address(
    cluster: Sandbox, deployed: dict[str, str]
) -> None:
    spoofer, target = _netns_of(cluster, deployed["spoofer"]), _netns_of(cluster, deployed["target"])
    victim = deployed["victim"]
    for command in (
        ("add", "table", "ip", "seen"),
        ("add", "chain", "ip", "seen", "in", "{ type filter hook input priority 0 ; }"),
        ("add", "rule", "ip", "seen", "in", "ip", "saddr", victim, "icmp", "type", "echo-request", "counter"),
    ):
        assert _in(cluster, target, "nft", *command).returncode == 0, command
    assert _in(cluster, spoofer, "ip", "addr", "add", f"{victim}/32", "dev", "eth0").returncode == 0
    try:
        # its own address goes through (and the target's MAC is then known: no ARP on the way,
        # the spoofed packets below go straight onto the bridge)
        wait_for(lambda: _pings(cluster, "spoofer", deployed["target"]), 30, "the spoofer's own pings")
        _pings(cluster, "spoofer", deployed["target"], "-I", victim)
        assert _echoes_from(cluster, target) == 0
    finally:
        _in(cluster, spoofer, "ip", "addr", "del", f"{victim}/32", "dev", "eth0")
        _in(cluster, target, "nft", "delete", "table", "ip", "seen")


def test_two_replicas_publishing_one_port_do_not_share_a_node(
    cluster: Sandbox, deployed: dict[str, str]
) -> None:
    why = "host port 18090/tcp is taken on 1 eligible node(s)"

    def told() -> bool:
        events = cluster.shoal_json("events", "--limit", "200")
        return any(
            e["kind"] == "replica.unplaced" and e["message"].endswith(f"replica 2 is unplaced: {why}")
            for e in events
        )

    wait_for(told, 30, "the unplaceable replica's reason")
    rows = [r for r in cluster.shoal_json("ps") if r.get("project") == PROJECT and r["service"] == "twice"]
    assert [r["node"] for r in rows if r["state"] != "unplaced"] == ["n1"]
    assert [r["message"] for r in rows if r["state"] == "unplaced"] == [why]

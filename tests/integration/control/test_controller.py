"""Services → tasks → node state documents, long-polls, status, secrets, failure detection."""

from __future__ import annotations

import base64
import threading
import time

import httpx
import psycopg

from tests.integration.control.helpers import (
    join,
    node_client,
    put_services,
    report_running,
    status,
    tasks,
    wait_for,
    web_spec,
)
from tests.support.server_fixtures import Server


def _running(server: Server, service: str) -> list[dict]:
    return [t for t in tasks(server, service=service) if t["desired"] == "run"]


def test_services_become_tasks_and_node_states(server: Server) -> None:
    a, b = join(server, "n1"), join(server, "n2")
    put_services(server, "p", {"web": web_spec("web", replicas=4)})
    placed = wait_for(lambda: len(_running(server, "web")) == 4 and _running(server, "web"), what="placement")
    assert {t["node"] for t in placed} == {"n1", "n2"}
    assert len({t["ip"] for t in placed}) == 4
    with node_client(server, a) as na, node_client(server, b) as nb:
        sa = report_running(na, "n1")
        report_running(nb, "n2")
        assert len(sa["containers"]) == 2
        assert all(c["ip"].startswith(a["subnet"].rsplit(".", 1)[0]) for c in sa["containers"])
        assert [p["name"] for p in sa["peers"]] == ["n2"]
        assert sa["peers"][0]["allowed_ips"] == [b["subnet"]]
        later = wait_for(
            lambda: (s := na.get("/api/v1/nodes/n1/state").json()) and len(s["dns"]) == 5 and s, what="dns"
        )
    names = {r["name"]: r["addresses"] for r in later["dns"]}
    assert sorted(names["web.p.shoal.internal"]) == sorted(t["ip"] for t in placed)
    assert names["1.web.p.shoal.internal"] == [next(t["ip"] for t in placed if t["replica"] == 1)]
    assert all(t["state"] == "running" for t in _running(server, "web"))


def test_long_poll_returns_on_change_not_before(server: Server) -> None:
    a = join(server, "lp1")
    stop = threading.Event()

    def beat() -> None:
        with node_client(server, a) as hb:
            while not stop.wait(0.5):
                status(hb, "lp1")

    beater = threading.Thread(target=beat)
    beater.start()
    try:
        _long_poll(server, a)
    finally:
        stop.set()
        beater.join()


def _long_poll(server: Server, a: dict) -> None:
    with node_client(server, a) as na:
        time.sleep(1.5)  # the join's cluster-wide refresh (coalesced by the controller) lands first
        first = na.get("/api/v1/nodes/lp1/state").json()
        started = time.monotonic()
        idle = na.get("/api/v1/nodes/lp1/state", params={"since": first["version"], "wait": 1}).json()
        assert time.monotonic() - started >= 0.9 and idle["version"] == first["version"]
        got: dict = {}

        def poll() -> None:
            got.update(
                na.get("/api/v1/nodes/lp1/state", params={"since": first["version"], "wait": 30}).json()
            )

        waiter = threading.Thread(target=poll)
        waiter.start()
        time.sleep(0.5)
        assert not got
        started = time.monotonic()
        with server.client() as admin:
            admin.post("/api/v1/nodes/lp1/labels", json={"labels": {"zone": "a"}})
        waiter.join(10)
        assert got["version"] > first["version"]
        assert time.monotonic() - started < 2


def test_secrets_encrypted_at_rest_and_sent_only_to_users(server: Server) -> None:
    a, b = join(server, "s1"), join(server, "s2")
    value = b"hunter2-very-secret"
    with server.client() as admin:
        r = admin.post(
            "/api/v1/secrets", json={"name": "dbpass", "value_b64": base64.b64encode(value).decode()}
        )
        assert r.status_code == 200
        assert "value" not in str(admin.get("/api/v1/secrets").json())
    with psycopg.connect(server.dsn) as conn:
        raw = conn.execute("SELECT ciphertext FROM secrets WHERE name = 'dbpass'").fetchone()
    assert raw is not None and value not in bytes(raw[0])
    mount = {"kind": "secret", "source": "dbpass", "target": "/run/secrets/dbpass"}
    put_services(
        server,
        "p",
        {
            "db": web_spec("db", replicas=1, template={"mounts": [mount]}, constraints=["node.hostname==s1"]),
            "web": web_spec("web", replicas=1, constraints=["node.hostname==s2"]),
        },
    )
    wait_for(lambda: len(tasks(server)) == 2, what="placement")
    with node_client(server, a) as na, node_client(server, b) as nb:
        sa = na.get("/api/v1/nodes/s1/state").json()
        sb = nb.get("/api/v1/nodes/s2/state").json()
    assert [s["name"] for s in sa["secrets"]] == ["dbpass"]
    assert base64.b64decode(sa["secrets"][0]["value_b64"]) == value
    assert sb["secrets"] == []


def test_dead_node_replicas_move_and_return_is_told_to_stop(server: Server) -> None:
    a, b = join(server, "f1"), join(server, "f2")
    put_services(server, "p", {"web": web_spec("web", replicas=2)})
    wait_for(lambda: len(_running(server, "web")) == 2, what="placement")
    with node_client(server, a) as na, node_client(server, b) as nb:
        report_running(na, "f1")
        report_running(nb, "f2")
        started = time.monotonic()
        # only f2 keeps its heartbeat; f1 goes silent
        while time.monotonic() - started < 12:
            status(
                nb,
                "f2",
                [{"id": t["id"], "state": "running"} for t in _running(server, "web") if t["node"] == "f2"],
            )
            if all(t["node"] == "f2" for t in _running(server, "web")):
                break
            time.sleep(0.5)
        moved = _running(server, "web")
        assert len(moved) == 2 and all(t["node"] == "f2" for t in moved), moved
        assert time.monotonic() - started < 10
        with server.client() as admin:
            assert admin.get("/api/v1/nodes/f1").json()["state"] == "down"
        status(na, "f1")
        assert na.get("/api/v1/nodes/f1/state").json()["containers"] == []


def test_a_stopping_replica_keeps_its_address_until_its_node_reports_it_gone(server: Server) -> None:
    """The agent lists a removed replica while it stops; its address is not given to a new one."""
    a = join(server, "ip1")
    put_services(server, "p", {"web": web_spec("web", replicas=1)})
    old = wait_for(lambda: _running(server, "web"), what="placement")[0]
    with node_client(server, a) as na:
        report_running(na, "ip1")
        put_services(server, "p", {"web": web_spec("web", replicas=0)})
        wait_for(lambda: not _running(server, "web"), what="scaled to 0")
        status(na, "ip1", [{"id": old["id"], "state": "running", "message": "stopping"}])
        put_services(server, "p", {"web": web_spec("web", replicas=1)})
        new = wait_for(lambda: _running(server, "web"), what="placement again")[0]
        assert new["ip"] != old["ip"]
        status(na, "ip1", [{"id": old["id"], "state": "exited", "exit_code": 0}])
        time.sleep(1.5)  # controller ticks: an exited replica the node still has is kept
        assert old["id"] in {t["id"] for t in tasks(server, service="web")}
        status(na, "ip1", [])
        wait_for(lambda: old["id"] not in {t["id"] for t in tasks(server, service="web")}, what="purged")


def test_a_removed_services_stopping_replica_keeps_its_address(server: Server) -> None:
    """`service rm` deletes the task rows at once; the replica the node still reports (in its
    stop grace) keeps its address, so another service's new replica never waits for that grace."""
    a = join(server, "rm1")
    put_services(server, "p", {"gone": web_spec("gone", replicas=1)})
    old = wait_for(lambda: _running(server, "gone"), what="placement")[0]
    with node_client(server, a) as na, server.client() as admin:
        report_running(na, "rm1")
        assert admin.delete("/api/v1/services/p.gone").status_code == 200
        status(na, "rm1", [{"id": old["id"], "state": "running", "message": "stopping", "ip": old["ip"]}])
        put_services(server, "p", {"next": web_spec("next", replicas=1)})
        new = wait_for(lambda: _running(server, "next"), what="the other service placed")[0]
        assert new["ip"] != old["ip"]
        status(na, "rm1", [])  # gone: its address is free again
        put_services(server, "p", {"next": web_spec("next", replicas=2)})
        wait_for(lambda: len(_running(server, "next")) == 2, what="scaled up")
        assert old["ip"] in {t["ip"] for t in _running(server, "next")}


def test_a_report_that_crossed_a_later_one_in_flight_is_not_stored(server: Server) -> None:
    """Two reports in flight at once may commit out of order: the later-made one wins."""
    joined = join(server, "cr1")
    put_services(server, "p", {"cross": web_spec("cross", replicas=1)})
    wait_for(lambda: _running(server, "cross"), what="placement")
    with node_client(server, joined) as node:
        state = node.get("/api/v1/nodes/cr1/state").json()
        cid, now = state["containers"][0]["id"], time.time()

        def report(health: str, at: float) -> None:
            body = {
                "node": "cr1",
                "time": at,
                "containers": [{"id": cid, "state": "running", "health": health}],
                "capacity": {"cpus": 4, "memory_bytes": 8 << 30},
            }
            assert node.post("/api/v1/nodes/cr1/status", json=body).status_code == 200

        report("healthy", now)
        report("unhealthy", now - 0.5)  # made before the one stored: it crossed it
        assert [t["health"] for t in _running(server, "cross")] == ["healthy"]
        report("healthy", now + 1)  # a repeat of the stored one's content: a heartbeat
        report("unhealthy", now - 3600)  # the node's clock went back: taken
        assert [t["health"] for t in _running(server, "cross")] == ["unhealthy"]


def _heartbeat(client: httpx.Client, server: Server, node: str) -> None:
    mine = [{"id": t["id"], "state": "running"} for t in _running(server, "web") if t["node"] == node]
    status(client, node, mine)


def test_losing_most_nodes_at_once_marks_none_down_and_says_so_once(server: Server) -> None:
    joined = {name: join(server, name) for name in ("q1", "q2", "q3")}
    put_services(server, "p", {"web": web_spec("web", replicas=3)})
    wait_for(lambda: len(_running(server, "web")) == 3, what="placement")
    clients = {name: node_client(server, j) for name, j in joined.items()}
    try:
        for name, client in clients.items():
            report_running(client, name)
        before = {t["id"]: t["node"] for t in _running(server, "web")}
        started = time.monotonic()
        while time.monotonic() - started < 9:  # three graces: only q3 is heard (the server's view)
            _heartbeat(clients["q3"], server, "q3")
            time.sleep(0.5)
        started = time.monotonic()
        while time.monotonic() - started < 3:  # the others back, inside the episode's hold
            for name, client in clients.items():
                _heartbeat(client, server, name)
            time.sleep(0.5)
    finally:
        for client in clients.values():
            client.close()
    assert {t["id"]: t["node"] for t in _running(server, "web")} == before
    with server.client() as admin:
        kinds = [e["kind"] for e in admin.get("/api/v1/events?limit=1000").json()]
        states = {n["name"]: n["state"] for n in admin.get("/api/v1/nodes").json()}
    assert "node.down" not in kinds
    assert kinds.count("server.suspect") == 1
    assert all(states[name] != "down" for name in joined), states

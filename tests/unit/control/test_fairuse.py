"""Fair use (control/fairuse.py) and the front's routes (control/front.py): caps, body limits,
the Content-Length patterns Caddy refuses with, the Caddy config's shape. Pure."""

from __future__ import annotations

import io
import random
import re
import threading
from pathlib import Path

import pytest
from flask import Flask, request

from shoal.control.fairuse import BODY_LIMITS, DEFAULT_BODY, RequestGuard, ShoalRequest, Slots, TooMany
from shoal.control.front import NODE_CREDENTIAL, FrontConfig, at_least, caddy_config

pytestmark = pytest.mark.unit


def test_slots_cap_each_key_and_give_back_once() -> None:
    slots = Slots()
    caps = [("token:a", 2, "streams of a"), ("people", 3, "streams of all")]
    first, second = slots.take(caps), slots.take(caps)
    with pytest.raises(TooMany, match="too many streams of a at once \\(at most 2\\)"):
        slots.take(caps)
    other = slots.take([("token:b", 2, "streams of b"), ("people", 3, "streams of all")])
    with pytest.raises(TooMany, match="streams of all"):
        slots.take([("token:c", 2, "streams of c"), ("people", 3, "streams of all")])
    first()
    first()  # twice: still one slot back
    assert slots.held("people") == 2 and slots.held("token:a") == 1
    second()
    other()
    assert slots.held("people") == 0


def test_slots_hold_under_threads() -> None:
    slots = Slots()
    taken: list[object] = []
    lock = threading.Lock()

    def grab() -> None:
        for _ in range(200):
            try:
                release = slots.take([("k", 5, "k")])
            except TooMany:
                continue
            with lock:
                taken.append(release)
                assert len(taken) <= 5
                taken.pop()
            release()

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert slots.held("k") == 0


@pytest.mark.parametrize("threshold", [1, 9, 10, 999, 20_000, 60_000, 1_000_000, 12_100_000, 12_345_678])
def test_content_length_patterns_match_exactly_the_refused_sizes(threshold: int) -> None:
    pattern = re.compile(at_least(threshold))
    rng = random.Random(threshold)
    for value in [
        threshold - 1,
        threshold,
        threshold + 1,
        0,
        *(rng.randint(0, threshold * 3) for _ in range(2000)),
    ]:
        if value >= 0:
            assert bool(pattern.match(str(value))) == (value >= threshold), value
            assert bool(pattern.match(f"00{value}")) == (value >= threshold), value


def app() -> Flask:
    flask_app = Flask("guarded")
    flask_app.request_class = ShoalRequest

    @flask_app.post("/login")
    def login() -> str:
        return str(len(request.form.get("token", "")))

    @flask_app.post("/deploy")
    def deploy() -> str:
        upload = request.files["file"]
        return f"{type(upload.stream).__name__} {len(upload.read())}"

    @flask_app.post("/api/v1/nodes/x/labels")
    def labels() -> str:
        return str(len(request.get_data()))

    flask_app.wsgi_app = RequestGuard(flask_app.wsgi_app, Slots())  # type: ignore[method-assign]
    return flask_app


def test_bodies_past_their_route_limit_are_413_unread() -> None:
    client = app().test_client()
    for path, limit in [("/login", BODY_LIMITS["/login"]), ("/api/v1/nodes/x/labels", DEFAULT_BODY)]:
        answer = client.post(path, data=b"x" * limit, content_type="application/x-www-form-urlencoded")
        assert answer.status_code == 413 and "must be under" in answer.json["error"]
        assert answer.headers["Connection"] == "close"
    assert client.post("/login", data={"token": "abc"}).text == "3"


def test_multipart_only_on_the_deploy_form_and_never_spooled() -> None:
    client = app().test_client()
    refused = client.post("/login", data={"token": (io.BytesIO(b"abc"), "t")})
    assert refused.status_code == 415
    uploaded = client.post("/deploy", data={"file": (io.BytesIO(b"services: {}\n"), "compose.yaml")})
    assert uploaded.text.startswith("BytesIO ")


def test_a_body_without_length_is_411() -> None:
    client = app().test_client()
    answer = client.post("/api/v1/nodes/x/labels", headers={"Transfer-Encoding": "chunked"}, data=b"")
    assert answer.status_code == 411


def test_the_caddy_config_routes_node_traffic_to_its_own_lane(tmp_path: Path) -> None:
    front = FrontConfig(
        "0.0.0.0:7443", tmp_path / "c", tmp_path / "k", tmp_path / "n.sock", tmp_path / "p.sock", tmp_path
    )
    config = caddy_config(front)
    server = config["apps"]["http"]["servers"]["api"]
    assert config["admin"]["disabled"] is True
    assert server["read_header_timeout"] == "10s" and server["max_header_bytes"] > 0
    node_routes = [r for r in server["routes"] if "header" in r.get("match", [{}])[0]]
    assert node_routes[0]["match"][0]["header"]["Authorization"] == [NODE_CREDENTIAL]
    assert node_routes[0]["handle"][0]["upstreams"] == [{"dial": f"unix/{tmp_path / 'n.sock'}"}]
    last = server["routes"][-1]["handle"][0]
    assert last["upstreams"] == [{"dial": f"unix/{tmp_path / 'p.sock'}"}] and last["buffer_requests"] is True
    refusals = [r for r in server["routes"] if r["handle"][0]["handler"] == "static_response"]
    assert len(refusals) == len(BODY_LIMITS) + 1 and all(
        r["handle"][0]["status_code"] == 413 for r in refusals
    )

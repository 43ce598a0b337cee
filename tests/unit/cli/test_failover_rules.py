"""Which requests the client may send to another server, and the server lists it keeps."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from shoal.client.contexts import ContextStore, parse_config, resolve
from shoal.client.errors import ApiError
from shoal.client.transport import Transport, may_resend, parse_servers


def test_a_request_that_never_left_or_is_safe_to_repeat_may_be_resent() -> None:
    refused = httpx.ConnectError("refused")
    cut = httpx.ReadError("connection reset")
    assert may_resend("POST", refused) and may_resend("GET", refused)
    assert may_resend("GET", cut) and may_resend("DELETE", cut)
    assert not may_resend("POST", cut)
    assert not may_resend("POST", httpx.ReadTimeout("slow"))


def test_the_servers_header_is_read_as_roots() -> None:
    assert parse_servers("https://a:7443/, https://b:7443,ftp://c") == ["https://a:7443", "https://b:7443"]
    assert parse_servers("") == []


def test_a_transport_starts_with_its_server_then_the_others() -> None:
    t = Transport("https://b:1", None, servers=["https://a:1", "https://b:1/", "https://c:1"])
    assert t.servers == ["https://b:1", "https://a:1", "https://c:1"]
    t.close()


def test_a_context_keeps_its_servers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ContextStore(tmp_path)
    store.put("c", "https://a:1", "tok", None)
    store.set_servers("c", ["https://a:1", "https://b:1"])
    doc = store.load()
    assert resolve(doc, {}).servers == ("https://a:1", "https://b:1")
    assert resolve(doc, {"SHOAL_SERVER": "https://x:1"}).servers == ()
    with pytest.raises(ValueError, match="servers"):
        parse_config({"contexts": {"c": {"server": "https://a:1", "servers": "https://b"}}})


def _through(answers: dict[str, httpx.Response]) -> Transport:
    """A transport over servers a and b whose answers come from `answers` (by host)."""
    t = Transport("https://a:1", None, servers=["https://a:1", "https://b:1"])
    t._http = httpx.Client(
        base_url="https://a:1/api/v1", transport=httpx.MockTransport(lambda r: answers[r.url.host])
    )
    return t


def test_a_front_door_answering_alone_sends_a_get_to_the_next_server() -> None:
    ok = httpx.Response(200, json=[], headers={"X-Shoal-Servers": "https://a:1,https://b:1"})
    t = _through({"a": httpx.Response(502), "b": ok})
    assert t.call("GET", "/servers").status_code == 200 and t.root == "https://b:1"


def test_a_post_is_not_repeated_and_a_shoal_error_is_the_servers_own() -> None:
    t = _through({"a": httpx.Response(502), "b": httpx.Response(201, json={})})
    with pytest.raises(ApiError, match="API process is not answering"):
        t.call("POST", "/secrets")
    own = httpx.Response(502, json={"error": "node n2: agent unreachable"})
    t = _through({"a": own, "b": httpx.Response(200, json={})})
    with pytest.raises(ApiError, match="agent unreachable"):
        t.call("GET", "/services/web/logs")
    assert t.root == "https://a:1"

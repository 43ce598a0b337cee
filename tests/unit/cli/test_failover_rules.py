"""Which requests the client may send to another server, and the server lists it keeps."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from shoal.client.contexts import ContextStore, parse_config, resolve
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

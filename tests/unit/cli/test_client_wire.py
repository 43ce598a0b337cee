"""The client's pure parts: error lines from responses, status → error kind, SSE, CA fingerprints."""

from __future__ import annotations

import datetime
import hashlib

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shoal.client.errors import ApiError, ForbiddenError, NotFoundError, UnauthorizedError, for_status
from shoal.client.models import Node, Task
from shoal.client.sse import parse_sse
from shoal.client.transport import error_message
from shoal.client.trust import ca_fingerprint, join_token_fingerprint
from shoal.errors import ShoalError


def test_error_message_prefers_the_error_field() -> None:
    got = error_message(httpx.Response(400, json={"error": "services.web.ports[0]: bad (line 7)"}))
    assert got == "services.web.ports[0]: bad (line 7)"


def test_error_message_falls_back_to_text_then_status() -> None:
    assert error_message(httpx.Response(502, text="Bad gateway\nmore")) == "Bad gateway"
    assert error_message(httpx.Response(500, content=b"")) == "HTTP 500 Internal Server Error"
    assert error_message(httpx.Response(400, json=["x"])) == '["x"]'


def test_status_kinds() -> None:
    assert isinstance(for_status(401, "m"), UnauthorizedError)
    assert isinstance(for_status(403, "m"), ForbiddenError)
    assert isinstance(for_status(404, "m"), NotFoundError)
    conflict = for_status(409, "exists")
    assert type(conflict) is ApiError and conflict.status == 409 and str(conflict) == "exists"
    assert isinstance(conflict, ShoalError)


def test_parse_sse_events_comments_and_multiline_data() -> None:
    lines = [
        ": keepalive",
        "",
        "id: 4",
        'data: {"id": 4, "kind": "a"}',
        "",
        'data: {"id":',
        "data: 5}",
        "",
        'data: {"id": 6}',
    ]
    assert list(parse_sse(lines)) == [{"id": 4, "kind": "a"}, {"id": 5}]


def test_models_ignore_unknown_fields_and_tolerate_nulls() -> None:
    node = Node.model_validate({"name": "n1", "labels": {"a": "b"}, "brand_new": True, "endpoint": None})
    assert node.name == "n1" and node.labels == {"a": "b"}
    row = {"service": "web", "replica": 1, "node": None, "ip": None, "state": "pending", "created": "x"}
    assert Task.model_validate(row).node is None


def _cert() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shx test ca")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def test_ca_fingerprint_is_sha256_of_der() -> None:
    pem = _cert()
    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    assert ca_fingerprint(pem) == hashlib.sha256(der).hexdigest()
    with pytest.raises(ShoalError, match="not a PEM certificate"):
        ca_fingerprint(b"hello")


def test_join_token_fingerprint() -> None:
    fp = "ab" * 32
    assert join_token_fingerprint(f"shoal-join.secret.{fp.upper()}") == fp
    for bad in ("shoal-join.secret", "other.secret." + fp, "shoal-join.secret.abc"):
        with pytest.raises(ShoalError, match="malformed"):
            join_token_fingerprint(bad)


def test_task_reads_stored_row_names_too() -> None:
    row = Task.model_validate({"service": "web", "observed_state": "running", "desired_state": "stop"})
    assert (row.state, row.desired) == ("running", "stop")
    view = Task.model_validate(
        {"service": "web", "state": "failed", "observed_state": "failed", "desired": "run"}
    )
    assert (view.state, view.desired) == ("failed", "run")
    assert view.model_dump()["state"] == "failed"

"""`shoal join`: pin the cluster CA from the join token, register this node, store its identity.

Order matters for security: the join token's secret is sent only over TLS verified against a
CA whose SHA-256 (DER) equals the fingerprint in the token. The CA is fetched unverified first
(`GET /api/v1/ca`, or the certificate chain the server presents in its TLS handshake); a
mismatch is refused before anything secret leaves the machine.
"""

from __future__ import annotations

import hmac
import socket
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from shoal.errors import ShoalError

TOKEN_PREFIX = "shoal-join"  # noqa: S105 (a prefix, not a secret)
TIMEOUT_S = 15.0
_ENCODING_DER = 2  # _ssl.ENCODING_DER: the chain's certificates as DER


class JoinError(ShoalError):
    """Joining the cluster failed; the message says at which step."""


@dataclass(frozen=True)
class JoinToken:
    raw: str
    secret: str
    ca_fingerprint: str  # lowercase hex SHA-256 of the CA certificate (DER)


def parse_token(raw: str) -> JoinToken:
    """Split `shoal-join.<secret>.<ca sha256 hex>`; a malformed token is one line of error."""
    text = raw.strip()
    prefix, _, rest = text.partition(".")
    secret, _, fingerprint = rest.rpartition(".")
    fingerprint = fingerprint.lower()
    if prefix != TOKEN_PREFIX or not secret:
        raise JoinError("join token is malformed: expected shoal-join.<secret>.<ca-fingerprint>")
    if len(fingerprint) != 64 or any(c not in "0123456789abcdef" for c in fingerprint):
        raise JoinError("join token's CA fingerprint is not 64 hex digits")
    return JoinToken(text, secret, fingerprint)


def cert_fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def pick_pinned(candidates: list[x509.Certificate], fingerprint: str) -> x509.Certificate:
    """The candidate whose fingerprint is the pinned one, or a JoinError naming what was seen."""
    for cert in candidates:
        if hmac.compare_digest(cert_fingerprint(cert), fingerprint):
            return cert
    seen = ", ".join(cert_fingerprint(c)[:16] for c in candidates) or "no certificate"
    raise JoinError(
        f"the server's CA does not match the join token (token {fingerprint[:16]}…, server {seen}…): "
        "refusing to send the token"
    )


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise JoinError(f"server URL {url!r} must be https://HOST[:PORT]")
    return parts.hostname, parts.port or 443


def fetch_ca_candidates(url: str) -> list[x509.Certificate]:
    """Certificates that may be the cluster CA, fetched WITHOUT verification (nothing secret sent)."""
    found = _from_ca_endpoint(url) + _from_handshake(url)
    if not found:
        raise JoinError(f"cannot fetch the cluster CA from {url}")
    return found


def _from_ca_endpoint(url: str) -> list[x509.Certificate]:
    try:
        answer = httpx.get(url.rstrip("/") + "/api/v1/ca", verify=False, timeout=TIMEOUT_S)  # noqa: S501
    except httpx.HTTPError as exc:
        raise JoinError(f"cannot reach {url}: {exc}") from exc
    if answer.status_code != 200:
        return []
    try:
        return x509.load_pem_x509_certificates(answer.content)
    except ValueError:
        return []


def _from_handshake(url: str) -> list[x509.Certificate]:
    host, port = _host_port(url)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((host, port), timeout=TIMEOUT_S) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            chain = getattr(getattr(tls, "_sslobj", None), "get_unverified_chain", lambda: None)()
    except OSError:
        return []
    return [x509.load_der_x509_certificate(c.public_bytes(_ENCODING_DER)) for c in chain or []]


def pinned_ca(url: str, token: JoinToken) -> bytes:
    """The CA certificate (PEM) the token pins, as served by the server."""
    cert = pick_pinned(fetch_ca_candidates(url), token.ca_fingerprint)
    return cert.public_bytes(serialization.Encoding.PEM)


def register(url: str, ca_pem: bytes, body: dict[str, Any]) -> dict[str, Any]:
    """POST /api/v1/join over TLS verified against the pinned CA; the join token goes in the
    Authorization header too, which the server checks before it reads the body."""
    context = ssl.create_default_context(cadata=ca_pem.decode())
    headers = {"Authorization": f"Bearer {body.get('token', '')}"}
    try:
        answer = httpx.post(
            url.rstrip("/") + "/api/v1/join", json=body, headers=headers, verify=context, timeout=TIMEOUT_S
        )
    except httpx.HTTPError as exc:
        raise JoinError(f"joining {url} failed: {exc}") from exc
    doc = _json(answer)
    if answer.status_code >= 400:
        raise JoinError(f"the server refused the join: {doc.get('error') or answer.status_code}")
    return doc


def _json(answer: httpx.Response) -> dict[str, Any]:
    try:
        doc = answer.json()
    except ValueError:
        doc = {}
    return doc if isinstance(doc, dict) else {}

"""Trusting a cluster's CA the first time: fetch it unverified, then pin it by its fingerprint.

A join token ends in the CA's SHA-256 (`shoal-join.<secret>.<sha256>`), so a joining agent pins
without asking anyone; `shoal login` without `--ca` shows the fingerprint to the person instead.
"""

from __future__ import annotations

import hashlib
import hmac

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from shoal.client.errors import for_status
from shoal.client.transport import (
    API_PREFIX,
    DEFAULT_TIMEOUT_S,
    error_message,
    server_root,
    unreachable,
)
from shoal.errors import ShoalError, first_line

JOIN_PREFIX = "shoal-join."


def fetch_ca(server: str, timeout: float = DEFAULT_TIMEOUT_S) -> bytes:
    """The cluster CA (PEM) fetched WITHOUT verification: pin it only after checking its fingerprint."""
    root = server_root(server)
    try:
        response = httpx.get(root + API_PREFIX + "/ca", verify=False, timeout=timeout)  # noqa: S501
    except httpx.HTTPError as exc:
        raise unreachable(root, exc) from exc
    if response.status_code >= 400:
        raise for_status(response.status_code, error_message(response))
    return response.content


def ca_fingerprint(pem: bytes) -> str:
    """SHA-256 hex of the certificate's DER encoding: what join tokens carry."""
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise ShoalError(f"not a PEM certificate: {first_line(exc)}") from exc
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def join_token_fingerprint(token: str) -> str:
    """The CA fingerprint a join token carries."""
    parts = token.strip().split(".")
    if len(parts) != 3 or f"{parts[0]}." != JOIN_PREFIX or len(parts[2]) != 64:
        raise ShoalError("join token is malformed: expected shoal-join.<secret>.<ca-sha256>")
    return parts[2].lower()


def fetch_pinned_ca(server: str, fingerprint: str) -> bytes:
    """The server's CA, refused unless its fingerprint is the expected one."""
    pem = fetch_ca(server)
    found = ca_fingerprint(pem)
    if not hmac.compare_digest(found, fingerprint.lower().replace(":", "")):
        raise ShoalError(f"CA of {server_root(server)} has fingerprint {found}, expected {fingerprint}")
    return pem

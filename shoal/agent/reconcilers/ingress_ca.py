"""This ingress node's own intermediate CA, under the cluster's ingress root (agent, ingress step).

With internal TLS, Caddy signs the hosts' certificates with an intermediate whose key is made
here and never leaves the node; the server signs only a certificate request (api/ingress_ca), so
the root's private key is never on a node. The intermediate is short-lived (a week); the agent
asks for a new one once less than RENEW_BEFORE of it is left, or when the root changed, and
keeps using the current one while the server does not answer. Each certificate is kept under a
name of its own digest, so a new one changes Caddy's config and is loaded.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shoal.errors import ShoalError

log = logging.getLogger(__name__)
KEY_NAME = "intermediate.key"
CERT_GLOB = "intermediate-*.crt"
LEGACY_ROOT_KEY = "root.key"  # where agents before this one kept the root's key: removed
RENEW_BEFORE = datetime.timedelta(days=4)  # of a 7-day intermediate: renewed after 3 days
RETRY_S = 30.0  # between requests the server did not answer

Signer = Callable[[str], str]  # CSR PEM → certificate PEM (the server's API)


@dataclass(frozen=True)
class Intermediate:
    cert_file: Path
    key_file: Path
    not_after: datetime.datetime


class NodeAuthority:
    def __init__(self, ca_dir: Path, node: str, sign: Signer | None) -> None:
        self.ca_dir = ca_dir
        self.node = node
        self.sign = sign
        self._next_try = 0.0

    @property
    def key_file(self) -> Path:
        return self.ca_dir / KEY_NAME

    def current(self, root_pem: str) -> Intermediate | None:
        """An intermediate under `root_pem` with time left, renewed when due; None when there is
        none usable (the server has not signed one yet)."""
        self.ca_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        (self.ca_dir / LEGACY_ROOT_KEY).unlink(missing_ok=True)
        key = self._key()
        root = x509.load_pem_x509_certificate(root_pem.encode())
        held = self._held(key, root)
        now = datetime.datetime.now(datetime.UTC)
        if held is None or held.not_after - now < RENEW_BEFORE:
            held = self._renew(key, root) or held
        return held if held is not None and held.not_after > now else None

    def _key(self) -> ec.EllipticCurvePrivateKey:
        try:
            key = serialization.load_pem_private_key(self.key_file.read_bytes(), password=None)
        except (FileNotFoundError, ValueError):
            key = ec.generate_private_key(ec.SECP256R1())
            _write_private(self.key_file, _key_pem(key))
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key

    def _held(self, key: ec.EllipticCurvePrivateKey, root: x509.Certificate) -> Intermediate | None:
        """The newest kept certificate that is this key's and was signed by this root."""
        found = [self._read(path, key, root) for path in self.ca_dir.glob(CERT_GLOB)]
        usable = [i for i in found if i is not None]
        return max(usable, key=lambda i: i.not_after, default=None)

    def _read(
        self, path: Path, key: ec.EllipticCurvePrivateKey, root: x509.Certificate
    ) -> Intermediate | None:
        try:
            cert = x509.load_pem_x509_certificate(path.read_bytes())
            cert.verify_directly_issued_by(root)
        except (OSError, ValueError, TypeError, InvalidSignature):
            return None
        if cert.public_key() != key.public_key():
            return None
        return Intermediate(path, self.key_file, cert.not_valid_after_utc)

    def _renew(self, key: ec.EllipticCurvePrivateKey, root: x509.Certificate) -> Intermediate | None:
        if self.sign is None or time.monotonic() < self._next_try:
            return None
        try:
            pem = self.sign(_csr(key, self.node))
        except ShoalError as exc:
            self._next_try = time.monotonic() + RETRY_S
            log.warning("ingress: the server did not sign this node's intermediate CA: %s", exc)
            return None
        return self._keep(pem, key, root)

    def _keep(self, pem: str, key: ec.EllipticCurvePrivateKey, root: x509.Certificate) -> Intermediate | None:
        path = self.ca_dir / f"intermediate-{hashlib.sha256(pem.encode()).hexdigest()[:16]}.crt"
        _write_private(path, pem.encode())
        kept = self._read(path, key, root)
        if kept is None:
            path.unlink()
            log.warning("ingress: the server's intermediate CA is not this key's under this root")
            return None
        for old in self.ca_dir.glob(CERT_GLOB):
            if old != path:
                old.unlink()
        return kept


def _csr(key: ec.EllipticCurvePrivateKey, node: str) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"shoal ingress {node}")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    tmp.replace(path)

"""The ingress intermediate CA endpoint against a real server and database: an ingress node's
CSR is signed under the cluster's ingress root; nothing the server sends a node holds the root's key.
"""

from __future__ import annotations

import json

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shoal.control.store.db import connect
from tests.integration.control.helpers import join, node_client
from tests.support.server_fixtures import Server, ServerFactory


def _csr(key: ec.EllipticCurvePrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "anything")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def _make_ingress(server: Server, name: str) -> None:
    with connect(server.dsn, autocommit=True) as conn:
        conn.execute("UPDATE nodes SET ingress = true WHERE name = %s", (name,))


def test_only_an_ingress_node_gets_its_csr_signed_under_the_root(server_factory: ServerFactory) -> None:
    server = server_factory("--grace", "3", "--ingress-tls", "internal")
    ing, worker = join(server, "ing1"), join(server, "w1")
    key = ec.generate_private_key(ec.SECP256R1())
    path = "/api/v1/nodes/ing1/ingress-ca"
    with node_client(server, ing) as client:
        refused = client.post(path, json={"csr_pem": _csr(key)})
        assert refused.status_code == 403 and "not an ingress node" in refused.json()["error"]
        _make_ingress(server, "ing1")
        signed = client.post(path, json={"csr_pem": _csr(key)})
        assert signed.status_code == 200, signed.text
        assert client.post(path, json={"csr_pem": "nonsense"}).status_code == 400
        state = client.get("/api/v1/nodes/ing1/state").text
    cert = x509.load_pem_x509_certificate(signed.json()["certificate_pem"].encode())
    root = x509.load_pem_x509_certificate((server.data_dir / "ingress-ca.crt").read_bytes())
    cert.verify_directly_issued_by(root)
    assert cert.public_key() == key.public_key()
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    assert "ing1" in cert.subject.rfc4514_string()
    settings = json.loads(state)["ingress_settings"]
    assert settings["ca_cert_pem"] == (server.data_dir / "ingress-ca.crt").read_text()
    assert "PRIVATE KEY" not in state
    with node_client(server, worker) as other:
        assert other.post(path, json={"csr_pem": _csr(key)}).status_code == 403

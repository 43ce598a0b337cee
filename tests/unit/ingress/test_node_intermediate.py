"""An ingress node's own intermediate CA: its key made on the node, a CSR signed by the server's
root (the real signing, shoal.control.pki), renewed when due, kept while the server is away."""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509

from shoal.agent.reconcilers.ingress_ca import NodeAuthority
from shoal.control import pki
from shoal.errors import ShoalError


@dataclass
class Server:
    cert: Path
    key: Path
    days: int = pki.INTERMEDIATE_DAYS
    calls: int = 0
    down: bool = False

    def sign(self, csr_pem: str) -> str:
        self.calls += 1
        if self.down:
            raise ShoalError("server unreachable")
        return pki.sign_intermediate(self.cert, self.key, csr_pem, "n1", self.days)


def _server(where: Path) -> Server:
    where.mkdir()
    pki.make_ca(where / "root.crt", where / "root.key", "shoal ingress root", path_length=1)
    return Server(where / "root.crt", where / "root.key")


@pytest.fixture
def server(tmp_path: Path) -> Server:
    return _server(tmp_path / "server")


def test_the_node_makes_its_key_and_gets_one_under_the_root(tmp_path: Path, server: Server) -> None:
    ca_dir = tmp_path / "caddy" / "ca"
    held = NodeAuthority(ca_dir, "n1", server.sign).current(server.cert.read_text())
    assert held is not None and held.cert_file.parent == ca_dir
    cert = x509.load_pem_x509_certificate(held.cert_file.read_bytes())
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(server.cert.read_bytes()))
    assert stat.S_IMODE(held.key_file.stat().st_mode) == 0o600
    root_key = server.key.read_bytes()
    assert not [p for p in ca_dir.iterdir() if p.read_bytes() == root_key]


def test_one_due_is_renewed_and_one_with_time_left_is_kept(tmp_path: Path, server: Server) -> None:
    root = server.cert.read_text()
    authority = NodeAuthority(tmp_path / "ca", "n1", server.sign)
    server.days = 3  # less than RENEW_BEFORE left from the start: due at the next look
    first = authority.current(root)
    server.days = pki.INTERMEDIATE_DAYS
    second = authority.current(root)
    assert second is not None and second != first and server.calls == 2
    assert authority.current(root) == second and server.calls == 2
    assert list((tmp_path / "ca").glob("intermediate-*.crt")) == [second.cert_file]


def test_a_server_away_keeps_the_held_one_and_none_is_none(tmp_path: Path, server: Server) -> None:
    root = server.cert.read_text()
    server.days = 3
    held = NodeAuthority(tmp_path / "ca", "n1", server.sign).current(root)
    server.down = True
    assert NodeAuthority(tmp_path / "ca", "n1", server.sign).current(root) == held
    assert NodeAuthority(tmp_path / "fresh", "n1", server.sign).current(root) is None


def test_a_new_root_gets_a_new_intermediate_and_an_old_root_key_file_is_removed(
    tmp_path: Path, server: Server
) -> None:
    ca_dir = tmp_path / "ca"
    NodeAuthority(ca_dir, "n1", server.sign).current(server.cert.read_text())
    (ca_dir / "root.key").write_text("an older agent's copy of the root key")
    other = _server(tmp_path / "other")
    held = NodeAuthority(ca_dir, "n1", other.sign).current(other.cert.read_text())
    assert held is not None and other.calls == 1
    assert not (ca_dir / "root.key").exists()


def test_a_request_that_is_not_a_csr_is_refused(server: Server) -> None:
    with pytest.raises(pki.CsrError):
        pki.sign_intermediate(server.cert, server.key, "not a csr", "n1")

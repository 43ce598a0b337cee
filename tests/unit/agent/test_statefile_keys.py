"""The ingress root's private key never goes to the saved state in the data dir."""

from __future__ import annotations

import stat
from pathlib import Path

from shoal.agent.statefile import ingress_key_file, load_state, save_state
from shoal.model.state import IngressSettings, NodeState

KEY = "-----BEGIN EC PRIVATE KEY-----\nroot-key\n-----END EC PRIVATE KEY-----\n"


def test_the_ingress_root_key_is_kept_on_the_secrets_tmpfs_only(tmp_path: Path) -> None:
    state_file, secrets_file = tmp_path / "data" / "state.json", tmp_path / "tmpfs" / ".state-secrets.json"
    settings = IngressSettings(tls="internal", ca_cert_pem="cert", ca_key_pem=KEY)
    state = NodeState(node="n", subnet="10.210.1.0/24", ingress_settings=settings)
    save_state(state_file, state, secrets_file)
    assert "root-key" not in state_file.read_text() and "cert" in state_file.read_text()
    assert stat.S_IMODE(ingress_key_file(secrets_file).stat().st_mode) == 0o600
    assert load_state(state_file, secrets_file) == state
    ingress_key_file(secrets_file).unlink()  # a reboot empties the tmpfs: the next state brings it
    got = load_state(state_file, secrets_file)
    assert got is not None and got.ingress_settings is not None and got.ingress_settings.ca_key_pem == ""


def test_a_node_without_ingress_writes_no_key_file(tmp_path: Path) -> None:
    secrets_file = tmp_path / "tmpfs" / ".state-secrets.json"
    save_state(tmp_path / "state.json", NodeState(node="n", subnet="10.210.1.0/24"), secrets_file)
    assert not ingress_key_file(secrets_file).exists()

"""The ingress root's private key never goes to a node's files: the state no longer carries it."""

from __future__ import annotations

import json
from pathlib import Path

from shoal.agent.statefile import legacy_ingress_key_file, load_state, save_state
from shoal.model.state import NodeState

KEY = "-----BEGIN EC PRIVATE KEY-----\nroot-key\n-----END EC PRIVATE KEY-----\n"


def _old_servers_state() -> NodeState:
    """A state as a server before per-node intermediates sent it: with the root's key in it."""
    document = {
        "node": "n",
        "subnet": "10.210.1.0/24",
        "ingress_settings": {"tls": "internal", "ca_cert_pem": "cert", "ca_key_pem": KEY},
    }
    return NodeState.model_validate_json(json.dumps(document))


def test_a_root_key_an_old_server_sends_is_written_nowhere(tmp_path: Path) -> None:
    state_file, secrets_file = tmp_path / "data" / "state.json", tmp_path / "tmpfs" / ".state-secrets.json"
    save_state(state_file, _old_servers_state(), secrets_file)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written and not [p for p in written if "root-key" in p.read_text()]
    got = load_state(state_file, secrets_file)
    assert got is not None and got.ingress_settings is not None and got.ingress_settings.ca_cert_pem == "cert"


def test_the_key_file_of_an_older_agent_is_removed(tmp_path: Path) -> None:
    secrets_file = tmp_path / "tmpfs" / ".state-secrets.json"
    secrets_file.parent.mkdir()
    legacy_ingress_key_file(secrets_file).write_text(json.dumps([KEY]))
    save_state(tmp_path / "state.json", NodeState(node="n", subnet="10.210.1.0/24"), secrets_file)
    assert not legacy_ingress_key_file(secrets_file).exists()

"""The last node state on disk: written after each new version, read when the agent starts.

This is what lets a node keep serving through a server or database outage, and lets a
restarted agent reconcile (and adopt its containers) before the server answers again. Secret
values and registry logins never go to the data dir: they are kept apart, in files (0600) on the
secrets tmpfs, so a reboot forgets them and the next state from the server brings them back. The
ingress root's private key is never sent to a node at all (reconcilers.ingress_ca).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from shoal.agent.config import write_private
from shoal.model.registry import RegistryAuth
from shoal.model.state import NodeState, SecretValue

log = logging.getLogger(__name__)

_SECRETS = TypeAdapter(list[SecretValue])
_LOGINS = TypeAdapter(list[RegistryAuth])


def logins_file(secrets_file: Path) -> Path:
    """Where the registry logins are kept: beside the secrets, on the same tmpfs."""
    return secrets_file.with_name(".state-registry-auths.json")


def legacy_ingress_key_file(secrets_file: Path) -> Path:
    """Where agents before the per-node intermediates kept the ingress root's key: removed."""
    return secrets_file.with_name(".state-ingress-key.json")


def save_state(path: Path, state: NodeState, secrets_file: Path | None = None) -> None:
    """Atomically replace the saved state; its secrets and logins go under `secrets_file`'s
    directory (tmpfs) only."""
    if secrets_file is None:
        write_private(path, state.model_dump_json().encode())
        return
    kept = state.model_copy(update={"secrets": [], "registry_auths": []})
    write_private(path, kept.model_dump_json().encode())
    _save_apart(secrets_file, state.secrets, _SECRETS)
    _save_apart(logins_file(secrets_file), state.registry_auths, _LOGINS)
    legacy_ingress_key_file(secrets_file).unlink(missing_ok=True)


def _save_apart(path: Path, values: list[Any], adapter: TypeAdapter[Any]) -> None:
    if values or path.exists():
        write_private(path, adapter.dump_json(values))


def load_state(path: Path, secrets_file: Path | None = None) -> NodeState | None:
    """The saved state (with its secrets and logins when they are still there), or None."""
    try:
        state = NodeState.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except ValidationError as exc:
        log.warning("ignoring unreadable saved state %s: %s", path, exc.errors()[0].get("msg", exc))
        return None
    if secrets_file is None:
        return state
    apart: dict[str, Any] = {
        "secrets": _load_apart(secrets_file, _SECRETS),
        "registry_auths": _load_apart(logins_file(secrets_file), _LOGINS),
    }
    return state.model_copy(update=apart)


def _load_apart(path: Path, adapter: TypeAdapter[Any]) -> list[Any]:
    try:
        return list(adapter.validate_json(path.read_bytes()))
    except FileNotFoundError:
        return []
    except (ValidationError, json.JSONDecodeError) as exc:
        log.warning("ignoring unreadable saved %s: %s", path.name, exc.__class__.__name__)
        return []

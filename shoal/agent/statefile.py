"""The last node state on disk: written after each new version, read when the agent starts.

This is what lets a node keep serving through a server or database outage, and lets a
restarted agent reconcile (and adopt its containers) before the server answers again. Secret
values, registry logins and the ingress root's private key never go to the data dir: they are
kept apart, in files (0600) on the secrets tmpfs, so a reboot forgets them and the next state from
the server brings them back.
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
_KEY = TypeAdapter(list[str])


def logins_file(secrets_file: Path) -> Path:
    """Where the registry logins are kept: beside the secrets, on the same tmpfs."""
    return secrets_file.with_name(".state-registry-auths.json")


def ingress_key_file(secrets_file: Path) -> Path:
    """Where the ingress root's private key is kept (internal TLS): beside the secrets."""
    return secrets_file.with_name(".state-ingress-key.json")


def save_state(path: Path, state: NodeState, secrets_file: Path | None = None) -> None:
    """Atomically replace the saved state; its secrets, logins and ingress key go under
    `secrets_file`'s directory (tmpfs) only."""
    if secrets_file is None:
        write_private(path, state.model_dump_json().encode())
        return
    settings = state.ingress_settings
    keyless = settings.model_copy(update={"ca_key_pem": ""}) if settings else None
    kept = state.model_copy(update={"secrets": [], "registry_auths": [], "ingress_settings": keyless})
    write_private(path, kept.model_dump_json().encode())
    _save_apart(secrets_file, state.secrets, _SECRETS)
    _save_apart(logins_file(secrets_file), state.registry_auths, _LOGINS)
    key = [settings.ca_key_pem] if settings and settings.ca_key_pem else []
    _save_apart(ingress_key_file(secrets_file), key, _KEY)


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
    key = _load_apart(ingress_key_file(secrets_file), _KEY)
    if state.ingress_settings is not None and key:
        apart["ingress_settings"] = state.ingress_settings.model_copy(update={"ca_key_pem": key[0]})
    return state.model_copy(update=apart)


def _load_apart(path: Path, adapter: TypeAdapter[Any]) -> list[Any]:
    try:
        return list(adapter.validate_json(path.read_bytes()))
    except FileNotFoundError:
        return []
    except (ValidationError, json.JSONDecodeError) as exc:
        log.warning("ignoring unreadable saved %s: %s", path.name, exc.__class__.__name__)
        return []

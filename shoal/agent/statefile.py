"""The last node state on disk: written after each new version, read when the agent starts.

This is what lets a node keep serving through a server or database outage, and lets a
restarted agent reconcile (and adopt its containers) before the server answers again. Secret
values never go to the data dir: they are kept apart, in a file on the secrets tmpfs.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from shoal.agent.config import write_private
from shoal.model.state import NodeState, SecretValue

log = logging.getLogger(__name__)

_SECRETS = TypeAdapter(list[SecretValue])


def save_state(path: Path, state: NodeState, secrets_file: Path | None = None) -> None:
    """Atomically replace the saved state; its secrets go to `secrets_file` (on tmpfs) only."""
    kept = state.model_copy(update={"secrets": []}) if secrets_file is not None else state
    write_private(path, kept.model_dump_json().encode())
    if secrets_file is not None and (state.secrets or secrets_file.exists()):
        write_private(secrets_file, _SECRETS.dump_json(state.secrets))


def load_state(path: Path, secrets_file: Path | None = None) -> NodeState | None:
    """The saved state (with its secrets when they are still there), or None."""
    try:
        state = NodeState.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except ValidationError as exc:
        log.warning("ignoring unreadable saved state %s: %s", path, exc.errors()[0].get("msg", exc))
        return None
    return state.model_copy(update={"secrets": _load_secrets(secrets_file)}) if secrets_file else state


def _load_secrets(path: Path) -> list[SecretValue]:
    try:
        return _SECRETS.validate_json(path.read_bytes())
    except FileNotFoundError:
        return []
    except (ValidationError, json.JSONDecodeError) as exc:
        log.warning("ignoring unreadable saved secrets %s: %s", path, exc)
        return []

"""What a container's bundle holds beside its root: config.json, the config files it mounts,
and the settings read from its spec at stop and log-rotation time (stop signal, log limits).

Under `shoal.agent.runtime.runtime`, which builds a bundle with these. Touches only the files of
the bundle it is given.
"""

from __future__ import annotations

import base64
import json
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shoal.model.container import ContainerSpec


def write_config_json(bundle: Path, doc: Mapping[str, Any]) -> None:
    config = bundle / "config.json"  # env values: root's only
    config.touch(mode=0o600)
    config.chmod(0o600)
    config.write_text(json.dumps(doc, indent=1))


def write_configs(spec: ContainerSpec, directory: Path) -> dict[str, str]:
    """Each config mount's content as a file (its mode, 0444 by default): target -> host path."""
    out: dict[str, str] = {}
    for i, mount in enumerate(m for m in spec.mounts if m.kind == "config"):
        directory.mkdir(mode=0o755, exist_ok=True)
        path = directory / str(i)
        path.write_bytes(base64.b64decode(mount.content_b64))
        path.chmod(mount.mode if mount.mode is not None else 0o444)
        out[mount.target] = str(path)
    return out


def log_limits(spec: ContainerSpec, default_bytes: int, default_keep: int) -> tuple[int, int]:
    """(max bytes, rotated files kept): Compose logging max-size/max-file, else the agent's.

    max-file counts the live file too; a single file is still rotated once (conmon keeps
    appending to the open file, so dropping it outright would lose lines being written)."""
    if spec.log_max_bytes is None:
        return default_bytes, default_keep
    return spec.log_max_bytes, max(1, spec.log_max_files - 1)


def stop_signal(spec: ContainerSpec) -> str:
    """runc's name for the spec's stop signal: ``SIGQUIT``, ``QUIT`` or ``3`` -> ``QUIT``."""
    sig = (spec.stop_signal or "TERM").upper().removeprefix("SIG")
    return signal.Signals(int(sig)).name.removeprefix("SIG") if sig.isdigit() else sig

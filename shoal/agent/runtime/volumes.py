"""Where a named volume lives on a node (the runtime binds it into the container).

A project's own volume is `<volumes>/@<project>/<name>`: two projects' `data` volumes never
share a directory ('@' cannot begin a volume name, so no external volume is mistaken for a
project). A volume declared `external: true` is shared by its name, `<volumes>/<name>`. A node
upgraded from the layout that named every volume `<volumes>/<name>` keeps its data: the first
project to mount that name takes the old directory over (a rename, nothing copied).
"""

from __future__ import annotations

import logging
from pathlib import Path

from shoal.model.container import Mount

log = logging.getLogger(__name__)


def volume_path(root: Path, project: str, mount: Mount) -> Path:
    if mount.external or not project:
        return root / mount.source
    return root / f"@{project}" / mount.source


def ensure_volume(root: Path, project: str, mount: Mount) -> Path:
    """The volume's directory, made (or taken over from the old layout) if it is not there."""
    path = volume_path(root, project, mount)
    legacy = root / mount.source
    if path != legacy and not path.exists() and legacy.is_dir() and not legacy.is_symlink():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        legacy.rename(path)
        log.warning("volume %s: moved %s to %s (one directory per project)", mount.source, legacy, path)
    path.mkdir(mode=0o755, parents=True, exist_ok=True)
    return path

"""Per-pull registry credentials: a containers-auth.json that lives only as long as one skopeo copy.

The node state carries the logins for the registries of this node's images (model.registry); the
image store asks `pull_auth_file` for the one a pull needs. The file (0600) sits alone in a fresh
private (0700) directory, on the agent's run dir (tmpfs) when it has one, and both are removed as
soon as the copy returns, failed or not. Without a login for the host the store's own configured
auth file (if any) is used unchanged, and with neither skopeo pulls anonymously.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from shoal.model.registry import RegistryAuth


def auth_document(logins: Sequence[RegistryAuth]) -> dict[str, dict[str, dict[str, str]]]:
    """containers-auth.json: `{"auths": {HOST: {"auth": base64("user:password")}}}`."""
    auths = {}
    for login in logins:
        token = base64.b64encode(f"{login.username}:{login.password}".encode()).decode()
        auths[login.host] = {"auth": token}
    return {"auths": auths}


def login_for(host: str, logins: Sequence[RegistryAuth]) -> RegistryAuth | None:
    """The login for ``host`` among ``logins``, if any."""
    return next((login for login in logins if login.host == host), None)


@contextlib.contextmanager
def pull_auth_file(
    login: RegistryAuth | None, fallback: Path | None, parent: Path | None
) -> Iterator[Path | None]:
    """An auth file holding ``login`` for the duration of the block (``fallback`` when no login)."""
    if login is None:
        yield fallback
        return
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    private = Path(tempfile.mkdtemp(prefix="pull-auth-", dir=parent))  # mode 0700
    try:
        path = private / "auth.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(auth_document([login]), handle)
        yield path
    finally:
        shutil.rmtree(private, ignore_errors=True)

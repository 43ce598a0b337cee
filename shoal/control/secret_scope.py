"""Which secret a deploy's services mount: their project's own, or a global one if the deployer may.

Under `api/services` (deploy), after the file is parsed: each secret a service names becomes a key
(`shoal.control.store.secrets.key_of`) in its revision, decided once with the deployer's rights.
The project's own secret of that name wins; a global one (every secret made before projects had
their own) is for admins, and for other roles where the node policy grants it (`secrets:`);
otherwise the deploy is refused (403, one line saying how to fix it). A secret that does not exist
yet is the project's, so a global one made later never reaches a service its deployer could not
have given it.
"""

from __future__ import annotations

from collections.abc import Collection

from shoal.control.auth import Forbidden
from shoal.control.revision import RevisionSpec
from shoal.control.store import secrets
from shoal.control.store.db import Conn
from shoal.model.policy import Grant


def scoped(
    conn: Conn, project: str, specs: dict[str, RevisionSpec], grant: Grant, own: Collection[str] = ()
) -> dict[str, RevisionSpec]:
    """`specs` with every secret mount's source (and the revision's `secrets`) as its key; `own`:
    the project's secrets the deploy itself brings (Compose `file:`), stored or about to be."""
    names = sorted({m.source for spec in specs.values() for m in spec.template.mounts if m.kind == "secret"})
    if not names:
        return specs
    found = secrets.existing(conn, project, names) | {(project, name) for name in own}
    keys = {name: secret_key(project, name, found, grant) for name in names}
    return {service: rekeyed(spec, keys) for service, spec in specs.items()}


def secret_key(project: str, name: str, found: set[tuple[str, str]], grant: Grant) -> str:
    """The key of secret `name` for a service of `project` deployed with `grant`."""
    if (project, name) in found or not project:
        return secrets.key_of(project, name)
    if grant.may_use_global_secret(name):
        return name
    if ("", name) in found:
        raise Forbidden(
            f"secret {name} is global: {grant.role} tokens may use only project {project}'s own secrets"
            f" (shoal secret create {name} -p {project}), or the node policy grants it (secrets: [{name}])"
        )
    return secrets.key_of(project, name)


def rekeyed(spec: RevisionSpec, keys: dict[str, str]) -> RevisionSpec:
    """A copy of `spec` whose secret mounts and `secrets` name keys."""
    copy = spec.model_copy(deep=True)
    for mount in copy.template.mounts:
        if mount.kind == "secret" and mount.source in keys:
            mount.source = keys[mount.source]
    copy.secrets = sorted(keys.get(name, name) for name in copy.secrets)
    return copy

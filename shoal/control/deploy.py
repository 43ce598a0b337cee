"""Deploys: a Compose document → one new immutable revision per changed service, in one transaction.

Parsing and strict validation are `shoal.model.compose`'s; this module turns its result into the
stored `RevisionSpec`s and starts rollouts (the controller drives them); also restart and rollback.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shoal.control.auth import Forbidden
from shoal.control.controller import place
from shoal.control.ingress_claims import Claim, conflicts
from shoal.control.revision import RevisionSpec
from shoal.control.store import events, services
from shoal.control.store import policy as node_policy
from shoal.control.store.db import Conn, lock_planning, notify_all_nodes, notify_nodes, poke_controller
from shoal.errors import ConfigError, Conflict
from shoal.model.compose import (
    ComposeError,
    DeploySpec,
    GrantOf,
    PolicyRefused,
    ServiceSpec,
    parse_compose,
)
from shoal.model.deploy_wire import ServiceChange, qualified
from shoal.model.policy import forbidden_paths, grant_for
from shoal.model.specs import diff_specs, to_container_spec

RESTART_LABEL = "shoal.restart"


def store(
    conn: Conn,
    project: str,
    specs: dict[str, RevisionSpec],
    *,
    prune: bool = False,
    keep: Sequence[str] = (),
    server_host: str = "",
) -> dict[str, Any]:
    """Write a revision for each service whose spec changed and place its replicas, all in the
    caller's transaction: a node gets the new replicas in the same state version as the
    deploy's other changes, with no wait for the controller's next tick. With `prune`, the
    project's services the file no longer has (nor left out by a profile: `keep`) are removed.
    Returns the answer's services [{name, revision}], changes, orphans and pruned."""
    lock_planning(conn)
    check_ingress(conn, project, specs, server_host)
    # Every node's row now, before any task's: the order a status report locks them in (the
    # version bump and its notification take effect at commit, wherever they are made).
    notify_all_nodes(conn)
    planned = changes(conn, project, specs, keep)
    result = [
        {"name": name, "revision": _store_one(conn, project, name, spec)}
        for name, spec in sorted(specs.items())
    ]
    orphans = [c.name for c in planned if c.change == "prune"]
    if prune:
        for name in orphans:
            remove(conn, qualified(project, name))
    place(conn)
    poke_controller(conn)  # the next steps of a rollout are the controller's
    return {
        "services": result,
        "changes": [c.model_dump() for c in planned],
        "orphans": orphans,
        "pruned": orphans if prune else [],
    }


def changes(
    conn: Conn, project: str, specs: dict[str, RevisionSpec], keep: Sequence[str] = ()
) -> list[ServiceChange]:
    """What a deploy of `specs` does to each service of the project (read-only)."""
    out = [_change(conn, project, name, spec) for name, spec in sorted(specs.items())]
    gone = [r["short_name"] for r in services.of_project(conn, project)]
    out += [ServiceChange(name=n, change="prune") for n in gone if n not in specs and n not in keep]
    return out


def _change(conn: Conn, project: str, name: str, spec: RevisionSpec) -> ServiceChange:
    before = services.get(conn, qualified(project, name))
    if before is None:
        return ServiceChange(name=name, change="new")
    old = services.revision_spec(conn, before["name"], int(before["revision"]))
    if _same(old, spec.model_dump(mode="json")):
        return ServiceChange(name=name, change="unchanged")
    return ServiceChange(name=name, change="changed", keys=_changed_keys(old, spec))


def _changed_keys(old: dict[str, Any], new: RevisionSpec) -> list[str]:
    if not old.get("source") or not new.source:
        return []
    return diff_specs(ServiceSpec.model_validate(old["source"]), ServiceSpec.model_validate(new.source))


def _store_one(conn: Conn, project: str, short: str, spec: RevisionSpec) -> int:
    """A new revision of one service unless its spec is the current one's; the revision's number."""
    name = qualified(project, short)
    before = services.get(conn, name)
    old = None if before is None else services.revision_spec(conn, name, int(before["revision"]))
    new = spec.model_dump(mode="json")
    if before is not None and _same(old, new):
        return int(before["revision"])
    number = services.put_revision(conn, before, name, new, project=project, change=change_text(old, spec))
    events.emit(conn, "service.deployed", name, f"service {name} revision {number} ({spec.template.image})")
    return number


def check_ingress(conn: Conn, project: str, specs: dict[str, RevisionSpec], server_host: str = "") -> None:
    """Refuse (409) a route whose host another project, or the server itself, holds."""
    held = [
        Claim(name, spec["ingress"]["host"], spec["ingress"].get("path", "/"))
        for name, spec in services.current_specs(conn).items()
        if spec.get("ingress")
    ]
    lines = conflicts(project, {n: s.ingress for n, s in specs.items()}, held, server_host)
    if lines:
        raise Conflict("; ".join(lines))


def _same(old: dict[str, Any] | None, new: dict[str, Any]) -> bool:
    """The stored spec is the new one, read with today's defaults: a field that a newer shoal
    added to the revision spec makes no new revision of every service after an upgrade."""
    if old is None or old == new:
        return old == new
    return RevisionSpec.model_validate(old).model_dump(mode="json") == new


def remove(conn: Conn, name: str) -> None:
    """Delete one service (qualified name) and tell the nodes that ran it."""
    notify_nodes(conn, services.remove(conn, name))
    notify_all_nodes(conn)
    events.emit(conn, "service.removed", name, f"service {name} removed")


def restart(conn: Conn, name: str) -> int:
    """A new revision identical but for a restart label, so the rollout replaces every replica."""
    row = services.require(conn, name)
    spec = RevisionSpec.model_validate(services.revision_spec(conn, name, row["revision"]))
    count = int(spec.template.labels.get(RESTART_LABEL, "0")) + 1
    spec.template.labels[RESTART_LABEL] = str(count)
    spec.replicas = int(row["replicas"])
    number = services.put_revision(
        conn, row, name, spec.model_dump(mode="json"), project=row["project"], change="restart"
    )
    events.emit(conn, "service.restart", name, f"service {name} restarting as revision {number}")
    poke_controller(conn)
    return number


def rollback(conn: Conn, name: str) -> int:
    """Point the service back at the revision before the current one."""
    row = services.require(conn, name)
    current = int(row["revision"])
    if current <= 1:
        raise Conflict(f"service {name} has no previous revision to roll back to")
    spec = services.revision_spec(conn, name, current - 1)
    spec["replicas"] = int(row["replicas"])
    services.set_revision(conn, name, current - 1, spec)
    events.emit(conn, "service.rollback", name, f"service {name} rolled back to revision {current - 1}")
    poke_controller(conn)
    notify_all_nodes(conn)
    return current - 1


def parse(
    text: str, project: str, files: Mapping[str, bytes] | None = None, policy: GrantOf | None = None
) -> DeploySpec:
    """Parse and strictly validate a Compose document (every fault, one a line); with `policy`
    (the grant for the deploy's project), what it refuses is Forbidden (403)."""
    try:
        return parse_compose(text, project, files, policy)
    except PolicyRefused as exc:
        raise Forbidden(str(exc)) from exc
    except ComposeError as exc:
        raise ConfigError(str(exc)) from exc


def grant_of(conn: Conn, role: str, data_dir: str, reserved: Mapping[str, str] | None = None) -> GrantOf:
    """What the current node policy lets a `role` token deploy, per project: never binds of the
    server's data directory (`data_dir`) nor of ALWAYS_FORBIDDEN, never a `reserved` host port."""
    doc = node_policy.current_document(conn)
    forbidden = forbidden_paths(data_dir)
    ports = tuple(sorted((reserved or {}).items()))
    return lambda project: grant_for(doc, role, project, forbidden, ports)


def revisions_of(spec: DeploySpec) -> dict[str, RevisionSpec]:
    return {name: revision_from(svc) for name, svc in spec.services.items()}


def revision_specs(text: str, project: str) -> dict[str, RevisionSpec]:
    """Parse and strictly validate a Compose document into one RevisionSpec per service."""
    return revisions_of(parse(text, project))


def revision_from(svc: ServiceSpec) -> RevisionSpec:
    """What is stored for one revision of a Compose service (its container template included)."""
    return RevisionSpec(
        template=to_container_spec(svc, 0, 0),
        mode=svc.mode,
        replicas=svc.replicas,
        constraints=svc.constraints,
        preferences=svc.preferences,
        secrets=sorted({s.source for s in svc.secrets}),
        volumes=svc.volume_names,
        ingress=svc.ingress,
        depends_on=svc.depends_on,
        rebalance=svc.rebalance,
        update=svc.update_config,
        rollback=svc.rollback_config,
        source=svc.model_dump(mode="json"),
    )


def change_text(old: dict[str, Any] | None, new: RevisionSpec) -> str:
    """What a revision changed, for `service inspect` (one line; environment values left out)."""
    if old is None or not old.get("source") or not new.source:
        return "created"
    old_spec, new_spec = ServiceSpec.model_validate(old["source"]), ServiceSpec.model_validate(new.source)
    lines = diff_specs(old_spec, new_spec, hide_env=True)  # shown to viewers: no env values
    return "; ".join(lines)[:500] or "no change"

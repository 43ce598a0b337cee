"""The node policy (admin): show the current version, set a new one, its history.

What deploys may do to nodes (docs/policy.md); the deploy route enforces it (`deploy.grant`).
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from pydantic import BaseModel, Field

from shoal.control.api.common import body, caller, ctx, int_arg
from shoal.control.store import events
from shoal.control.store import policy as store
from shoal.control.store.db import notify_all_nodes
from shoal.errors import ConfigError, NotFound
from shoal.model.policy import MAX_POLICY_BYTES, PolicyError, PolicyVersion, parse_policy

bp = Blueprint("policy", __name__, url_prefix="/api/v1/policy")


class PolicyRequest(BaseModel):
    document: str = Field(max_length=MAX_POLICY_BYTES)


def view(row: store.PolicyRow | None) -> PolicyVersion:
    if row is None:  # never set: the empty policy, version 0
        return PolicyVersion(version=0, document="")
    return PolicyVersion(
        version=row.version, document=row.document, author=row.author, created=row.created.isoformat()
    )


@bp.get("")
def show() -> Response:
    caller("admin")
    with ctx().db.transaction() as conn:
        return jsonify(view(store.current(conn)).model_dump())


@bp.put("")
def set_policy() -> Response:
    who = caller("admin")
    req = body(PolicyRequest)
    try:
        parse_policy(req.document)
    except PolicyError as exc:
        raise ConfigError("policy: " + "\npolicy: ".join(exc.lines)) from None
    with ctx().db.transaction() as conn:
        row = store.put(conn, req.document, who.name or who.id)
        notify_all_nodes(conn)  # metadata access is in every node's state
        events.emit(conn, "policy.set", f"v{row.version}", f"node policy version {row.version} set")
    return jsonify(view(row).model_dump())


@bp.get("/versions")
def versions() -> Response:
    caller("admin")
    limit = int_arg("limit", 100, 1, 10000)
    with ctx().db.transaction() as conn:
        rows = store.history(conn)[:limit]
    return jsonify([view(r).model_dump() for r in rows])


@bp.get("/versions/<int:number>")
def one_version(number: int) -> Response:
    caller("admin")
    with ctx().db.transaction() as conn:
        row = store.version(conn, number)
    if row is None:
        raise NotFound(f"policy version {number} not found")
    return jsonify(view(row).model_dump())

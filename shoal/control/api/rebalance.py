"""`POST /services/<name>/rebalance` (plan, and ask the controller to move) and `GET` (progress).

The plan is the controller's own (`controller.current_plan`, read under the planning lock), so
`--dry-run` shows exactly the moves the controller would make, first one first.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request
from pydantic import BaseModel

from shoal.control.api.common import body, caller, ctx, jsonable
from shoal.control.api.services import resolved
from shoal.control.controller import current_plan
from shoal.control.scheduler import RebalanceStep
from shoal.control.store import events, rebalances
from shoal.control.store.db import Conn, Row, lock_planning, poke_controller
from shoal.errors import NotFound

bp = Blueprint("rebalance", __name__, url_prefix="/api/v1")
BALANCED = "already balanced"


class RebalanceRequest(BaseModel):
    dry_run: bool = False


def _moves(step: RebalanceStep | None) -> list[dict[str, Any]]:
    moves = step.moves if step else []
    return [{"replica": m.replica, "from": m.source, "to": m.target} for m in moves]


def _answer(row: Row, state: str, message: str, moves: list[dict[str, Any]], **more: Any) -> dict[str, Any]:
    return {
        "service": row["short_name"],
        "project": row["project"],
        "state": state,
        "message": message,
        "moves": moves,
        **more,
    }


def _request(conn: Conn, service: Row, dry_run: bool) -> dict[str, Any]:
    lock_planning(conn)
    name = service["name"]
    plan = current_plan(conn)
    step = plan.rebalance.get(name)
    moves = _moves(step)
    if step is None or step.balanced:
        return _answer(service, "done", BALANCED, [], dry_run=dry_run)
    busy = "the service is being rolled out or placed" if name in plan.rebalance_busy else ""
    waiting = f"waiting: {step.waiting or busy}" if step.waiting or busy else ""
    if dry_run:
        return _answer(service, "planned", waiting, moves, dry_run=True)
    rebalances.request(conn, name)
    events.emit(conn, "rebalance.requested", name, f"{name}: rebalance of {len(moves)} move(s) asked for")
    poke_controller(conn)
    return _answer(service, "running", waiting, moves, dry_run=False)


@bp.post("/services/<name>/rebalance")
def rebalance(name: str) -> Response:
    caller("operator")
    req = body(RebalanceRequest) if request.get_data() else RebalanceRequest()
    with ctx().db.transaction() as conn:
        return jsonify(_request(conn, resolved(conn, name), req.dry_run))


@bp.get("/services/<name>/rebalance")
def rebalance_progress(name: str) -> Response:
    caller("viewer")
    with ctx().db.transaction() as conn:
        service = resolved(conn, name)
        row = rebalances.get(conn, service["name"])
    if row is None:
        raise NotFound(f"no rebalance of service {name} was asked for")
    view = _answer(service, row["state"], row["message"], list(row["moves"]))
    return jsonify(jsonable({**view, "requested": row["requested"], "updated": row["updated"]}))

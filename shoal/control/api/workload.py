"""Logs and exec of a service's replicas: the server relays to the agents over the overlay."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request, stream_with_context
from pydantic import BaseModel, Field

from shoal.control.agents import AgentCalls, Replica, followed_logs, merged_logs
from shoal.control.api.common import body, caller, ctx
from shoal.control.store import nodes, services, tasks
from shoal.errors import NotFound

bp = Blueprint("workload", __name__, url_prefix="/api/v1")


class ExecRequest(BaseModel):
    cmd: list[str] = Field(min_length=1)
    replica: int | None = None
    stdin_b64: str | None = None


def _replicas(name: str) -> list[Replica]:
    with ctx().db.transaction() as conn:
        name = services.resolve(conn, name, request.args.get("project") or None)["name"]
        rows = [t for t in tasks.query(conn, service=name) if t["desired_state"] == "run" and t["node"]]
        secrets = {n: nodes.agent_secret(conn, n) for n in {t["node"] for t in rows}}
        subnets = {n["name"]: n["subnet"] for n in nodes.all_nodes(conn)}
    return [Replica(t["replica"], t["id"], t["node"], subnets[t["node"]], secrets[t["node"]]) for t in rows]


def _calls() -> AgentCalls:
    return AgentCalls(ctx().config.agent_port)


@bp.get("/services/<name>/logs")
def service_logs(name: str) -> Response:
    caller("operator")
    replicas = _replicas(name)
    since = request.args.get("since") or None
    tail_arg = request.args.get("tail", "200")
    tail = int(tail_arg) if tail_arg.isdigit() else 200
    if request.args.get("follow", "0") in ("1", "true"):
        stream = (f"{line}\n" for line in followed_logs(_calls(), replicas, since, tail))
        return Response(stream_with_context(stream), mimetype="text/plain")
    text = "".join(f"{line}\n" for line in merged_logs(_calls(), replicas, since, tail))
    return Response(text, mimetype="text/plain")


@bp.post("/services/<name>/exec")
def service_exec(name: str) -> Response:
    caller("operator")
    req = body(ExecRequest)
    replicas = _replicas(name)
    chosen = [r for r in replicas if req.replica is None or r.replica == req.replica]
    if not chosen:
        raise NotFound(f"service {name} has no running replica {req.replica if req.replica else ''}".strip())
    result = _calls().exec(min(chosen, key=lambda r: r.replica), req.cmd, req.stdin_b64)
    return jsonify(exit_code=result.get("exit_code"), output=result.get("output", ""))

"""Logs and exec of a service's replicas: the server relays to the agents over the overlay.

A followed log and an exec each hold one of the caller's stream slots (fairuse.py) while they run.
"""

from __future__ import annotations

from collections.abc import Iterator

from flask import Blueprint, Response, jsonify, request, stream_with_context
from pydantic import BaseModel, Field

from shoal.control.agents import AgentCalls, Replica, followed_logs, merged_logs
from shoal.control.api.common import body, caller, ctx, hold
from shoal.control.fairuse import Release
from shoal.control.serve import client_gone
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
    who = caller("operator")
    replicas = _replicas(name)
    since = request.args.get("since") or None
    tail_arg = request.args.get("tail", "200")
    tail = int(tail_arg) if tail_arg.isdigit() else 200
    if request.args.get("follow", "0") in ("1", "true"):
        return _follow(hold(who), replicas, since, tail)
    text = "".join(f"{line}\n" for line in merged_logs(_calls(), replicas, since, tail))
    return Response(text, mimetype="text/plain")


def _follow(release: Release, replicas: list[Replica], since: str | None, tail: int) -> Response:
    gone, deadline = client_gone(request.environ), ctx().config.stream_max_s

    def lines() -> Iterator[str]:
        try:
            for line in followed_logs(_calls(), replicas, since, tail, gone=gone, deadline_s=deadline):
                yield f"{line}\n"
        finally:
            release()

    response = Response(stream_with_context(lines()), mimetype="text/plain")
    response.call_on_close(release)
    return response


@bp.post("/services/<name>/exec")
def service_exec(name: str) -> Response:
    release = hold(caller("operator"))
    try:
        req = body(ExecRequest)
        replicas = _replicas(name)
        chosen = [r for r in replicas if req.replica is None or r.replica == req.replica]
        if not chosen:
            which = req.replica if req.replica else ""
            raise NotFound(f"service {name} has no running replica {which}".strip())
        result = _calls().exec(min(chosen, key=lambda r: r.replica), req.cmd, req.stdin_b64)
    finally:
        release()
    return jsonify(exit_code=result.get("exit_code"), output=result.get("output", ""))

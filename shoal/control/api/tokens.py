"""API tokens and join tokens (admin). A join token carries what nodes joining with it get:
labels, the ingress flag, the relay mark (the node itself has no say)."""

from __future__ import annotations

from typing import Literal

from flask import Blueprint, Response, jsonify
from pydantic import BaseModel, Field, field_validator

from shoal.control import auth
from shoal.control.api.common import body, caller, ctx, jsonable
from shoal.control.store import events, tokens
from shoal.model.join_wire import JoinGrants

bp = Blueprint("tokens", __name__, url_prefix="/api/v1")


class TokenRequest(BaseModel):
    role: Literal["metrics", "viewer", "operator", "admin"]
    name: str = Field(default="", max_length=200)


class JoinTokenRequest(BaseModel):
    ttl_s: float = Field(default=86400.0, gt=0, le=10 * 365 * 86400)
    uses: int = Field(default=1, ge=1, le=1_000_000)
    labels: dict[str, str] = Field(default_factory=dict, max_length=100)
    ingress: bool = False
    relay: bool = False
    server: bool = False  # may join as the server's own machine (its `--server-node` name)

    @field_validator("labels")
    @classmethod
    def _keys(cls, value: dict[str, str]) -> dict[str, str]:
        if any(not key for key in value):
            raise ValueError("a label key is empty")
        return value

    def grants(self) -> JoinGrants:
        return JoinGrants(labels=self.labels, ingress=self.ingress, relay=self.relay, server=self.server)

    def granting(self) -> str:
        given = [f"{k}={v}" for k, v in sorted(self.labels.items())]
        return ", ".join(given + ["ingress"] * self.ingress + ["relay"] * self.relay) or "nothing"


@bp.get("/tokens")
def list_tokens() -> Response:
    caller("admin")
    with ctx().db.transaction() as conn:
        return jsonify(jsonable(tokens.all_tokens(conn)))


@bp.post("/tokens")
def create_token() -> Response:
    caller("admin")
    req = body(TokenRequest)
    token_id, token = auth.new_api_token()
    with ctx().db.transaction() as conn:
        tokens.create(conn, token_id, req.name, req.role, auth.digest(token))
        events.emit(conn, "token.created", token_id, f"{req.role} token {req.name or token_id} created")
    return jsonify(id=token_id, role=req.role, name=req.name, token=token)


@bp.delete("/tokens/<token_id>")
def remove_token(token_id: str) -> Response:
    caller("admin")
    with ctx().db.transaction() as conn:
        tokens.remove(conn, token_id)
        events.emit(conn, "token.removed", token_id, f"token {token_id} removed")
    return jsonify(ok=True)


@bp.get("/join-tokens")
def list_join_tokens() -> Response:
    caller("admin")
    with ctx().db.transaction() as conn:
        return jsonify(jsonable(tokens.all_join(conn)))


@bp.post("/join-tokens")
def create_join_token() -> Response:
    caller("admin")
    req = body(JoinTokenRequest)
    token_id, token, hashed = auth.new_join_token(ctx().ca_fingerprint)
    with ctx().db.transaction() as conn:
        tokens.create_join(conn, token_id, hashed, req.ttl_s, req.uses, grants=req.grants())
        events.emit(
            conn, "token.created", token_id, f"join token {token_id} created, granting {req.granting()}"
        )
    return jsonify(id=token_id, token=token, labels=req.labels, ingress=req.ingress, relay=req.relay)


@bp.delete("/join-tokens/<token_id>")
def revoke_join_token(token_id: str) -> Response:
    caller("admin")
    with ctx().db.transaction() as conn:
        tokens.revoke_join(conn, token_id)
    return jsonify(ok=True)

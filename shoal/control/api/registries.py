"""Registry logins: `shoal registry login|ls|rm`. Admins store and remove them (the password goes
in sealed and never comes back out); operators may list hosts and usernames. Nodes receive a
login in their state only while they run an image from its host (control.desired)."""

from __future__ import annotations

import contextlib

from flask import Blueprint, Response, jsonify
from pydantic import BaseModel, Field, field_validator

from shoal.control.api.common import body, caller, ctx, jsonable
from shoal.control.store import events, registries
from shoal.model.registry import normalize_host

bp = Blueprint("registries", __name__, url_prefix="/api/v1/registries")


class RegistryLoginRequest(BaseModel):
    host: str = Field(max_length=260)
    username: str = Field(min_length=1, max_length=256)
    password: str = Field(min_length=1, max_length=8192)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return normalize_host(value)

    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        if ":" in value or any(ord(ch) < 32 for ch in value):
            raise ValueError("may not hold ':' or control characters")
        return value


@bp.get("")
def list_logins() -> Response:
    caller("operator")
    with ctx().db.transaction() as conn:
        return jsonify(jsonable(registries.all_logins(conn)))


@bp.post("")
def login() -> Response:
    caller("admin")
    req = body(RegistryLoginRequest)
    sealed = ctx().vault.seal(req.password.encode())
    with ctx().db.transaction() as conn:
        registries.put(conn, req.host, req.username, sealed)
        registries.touch_pullers(conn, req.host)
        events.emit(conn, "registry.login", req.host, f"login for registry {req.host} as {req.username}")
    return jsonify(host=req.host, username=req.username)


@bp.delete("/<host>")
def logout(host: str) -> Response:
    caller("admin")
    with contextlib.suppress(ValueError):  # not a host at all: remove() says there is no such login
        host = normalize_host(host)
    with ctx().db.transaction() as conn:
        registries.remove(conn, host)
        registries.touch_pullers(conn, host)
        events.emit(conn, "registry.removed", host, f"login for registry {host} removed")
    return jsonify(ok=True)

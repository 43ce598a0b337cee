"""Secrets (admin): values go in encrypted and never come back out through the API.

A secret belongs to a project (`project`), or is global (`project` empty, as every secret was
before projects had their own); `DELETE /secrets/NAME?project=P` removes a project's.
"""

from __future__ import annotations

import base64
import binascii
import re

from flask import Blueprint, Response, jsonify, request
from pydantic import BaseModel, Field, field_validator

from shoal.control.api.common import body, caller, ctx, jsonable
from shoal.control.store import events, secrets
from shoal.errors import ConfigError
from shoal.model.deploy_wire import PROJECT_PATTERN

bp = Blueprint("secrets", __name__, url_prefix="/api/v1/secrets")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
MAX_BYTES = 512 * 1024


class SecretRequest(BaseModel):
    name: str
    value_b64: str = Field(max_length=MAX_BYTES * 2)
    project: str = Field(default="", pattern=r"^$|" + PROJECT_PATTERN)  # "": a global secret

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError("letters, digits, '_', '.', '-' (at most 128)")
        return value

    @field_validator("value_b64")
    @classmethod
    def _value(cls, value: str) -> str:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("not valid base64") from exc
        return value


@bp.get("")
def list_secrets() -> Response:
    caller("admin")
    with ctx().db.transaction() as conn:
        return jsonify(jsonable(secrets.all_secrets(conn)))


@bp.post("")
def create_secret() -> Response:
    caller("admin")
    req = body(SecretRequest)
    sealed = ctx().vault.seal(base64.b64decode(req.value_b64))
    with ctx().db.transaction() as conn:
        secrets.put(conn, req.name, sealed, req.project)
        secrets.touch_users(conn, req.name, req.project)
        where = f" in project {req.project}" if req.project else ""
        events.emit(conn, "secret.created", req.name, f"secret {req.name}{where} stored")
    return jsonify(name=req.name, project=req.project)


@bp.delete("/<name>")
def remove_secret(name: str) -> Response:
    caller("admin")
    project = _project_arg()
    with ctx().db.transaction() as conn:
        secrets.remove(conn, name, project)
        where = f" in project {project}" if project else ""
        events.emit(conn, "secret.removed", name, f"secret {name}{where} removed")
    return jsonify(ok=True)


def _project_arg() -> str:
    project = request.args.get("project", "")
    if project and not re.match(PROJECT_PATTERN, project):
        raise ConfigError(f"project: {project!r} is not a project name")
    return project

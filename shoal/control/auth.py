"""Who is calling: API tokens with roles, join tokens, node credentials.

Tokens are random secrets shown once; only their SHA-256 is stored. A request carries
`Authorization: Bearer <token>`; `authenticate` turns it into a `Principal` the API checks.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from shoal.control.store import nodes, tokens
from shoal.control.store.db import Conn
from shoal.errors import ShoalError

ROLES = ("metrics", "viewer", "operator", "admin")  # each may do what those before it may
NODE_PREFIX = "shoal-node."
API_PREFIX = "shoal-api."
JOIN_PREFIX = "shoal-join."


class Unauthorized(ShoalError):
    """No or unknown credentials (401)."""


class Forbidden(ShoalError):
    """Known credentials without the right (403)."""


@dataclass(frozen=True)
class Principal:
    kind: str  # "user" or "node"
    role: str = ""  # for users
    node: str = ""  # for nodes
    name: str = ""  # the token's name, for people
    id: str = ""  # the token's id, for people

    @property
    def label(self) -> str:
        """Who, for the audit trail of events: `token <id> (<name>)` or `node <name>`."""
        if self.kind == "node":
            return f"node {self.node}"
        return f"token {self.id} ({self.name})" if self.name else f"token {self.id}"

    def require_role(self, needed: str) -> None:
        if self.kind != "user":
            raise Forbidden("a node credential may only read its own state and post its own status")
        if ROLES.index(self.role) < ROLES.index(needed):
            raise Forbidden(f"this needs the {needed} role; the token has {self.role}")

    def require_node(self, name: str) -> None:
        if self.kind != "node" or self.node != name:
            raise Forbidden(f"only node {name}'s own credential may do this")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def new_api_token() -> tuple[str, str]:
    """(id, token) of a fresh API token."""
    return secrets.token_hex(6), API_PREFIX + new_secret()


def new_node_credential() -> str:
    return NODE_PREFIX + new_secret()


def new_join_token(ca_fingerprint: str) -> tuple[str, str, str]:
    """(id, token, hash): the token is `shoal-join.<secret>.<ca sha256 hex>`; the hash covers the secret."""
    secret = new_secret().replace(".", "_")
    return secrets.token_hex(6), f"{JOIN_PREFIX}{secret}.{ca_fingerprint}", digest(secret)


def join_secret_hash(token: str) -> str:
    """The stored hash of a join token's secret part; a malformed token hashes to nothing valid."""
    parts = token.split(".")
    if len(parts) != 3 or f"{parts[0]}." != JOIN_PREFIX:
        raise Unauthorized("join token is malformed: expected shoal-join.<secret>.<ca-fingerprint>")
    return digest(parts[1])


def bearer(header: str | None) -> str:
    if not header or not header.startswith("Bearer "):
        raise Unauthorized("missing Authorization: Bearer <token> header")
    return header.removeprefix("Bearer ").strip()


def authenticate(conn: Conn, token: str) -> Principal:
    hashed = digest(token)
    if token.startswith(NODE_PREFIX):
        node = nodes.by_credential(conn, hashed)
        if node is not None:
            return Principal(kind="node", node=node)
    else:
        found = tokens.find(conn, hashed)
        if found is not None:
            return Principal(kind="user", role=found["role"], name=found["name"], id=found["id"])
    raise Unauthorized("unknown token")

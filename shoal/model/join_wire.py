"""The join request (`POST /api/v1/join`): what an agent sends to join, as the server reads it.

The join token itself goes in `Authorization: Bearer shoal-join...`; the body's `token` is what
older clients sent, and the server then requires it to be the same.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from shoal.model.base import Wire
from shoal.model.status import Capacity

NODE_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class JoinGrants(Wire):
    """What a node joining with a token gets, as the admin who made the token chose (stored with
    the token; the join request itself chooses none of it)."""

    labels: dict[str, str] = Field(default_factory=dict)
    ingress: bool = False
    relay: bool = False
    server: bool = False  # may join as the server's own machine (`server init --server-node`)


class JoinRequest(Wire):
    """The join token and the node's own description."""

    token: str = ""  # older clients send it here too; the Authorization header is what counts
    name: str
    public_key: str = Field(default="", max_length=200)
    endpoint: str | None = Field(default=None, max_length=300)
    labels: dict[str, str] = Field(default_factory=dict)  # a request: the join token decides
    ingress: bool = False  # a request: the join token decides
    capacity: Capacity = Field(default_factory=Capacity)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NODE_NAME.match(value):
            raise ValueError("must be a DNS label: lowercase letters, digits and '-'")
        return value

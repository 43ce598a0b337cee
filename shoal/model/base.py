"""The base of every wire object: the bottom of the stack, imports nothing of shoal.

Agents and servers of different versions must still talk, so every wire object ignores
fields it does not know (as ops and Kubernetes clients do) instead of refusing them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

WIRE_VERSION = 1


class Wire(BaseModel):
    """A versioned wire object that tolerates unknown fields."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, defer_build=True)


class Strict(BaseModel):
    """A user-written document (deploy file): an unknown key is an error, never ignored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)

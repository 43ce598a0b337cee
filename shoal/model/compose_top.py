"""The strict schema of a Compose document's top level: services, networks, volumes, secrets, configs.

Under `shoal.model.compose_build`, which validates a loaded document against `Document`. Pure.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from shoal.model.base import Strict
from shoal.model.compose_schema import KeyValues
from shoal.model.compose_service import ServiceSection

UNSUPPORTED_TOP = {
    "include": "merge the included file into this one (or deploy it as its own project)",
    "models": "remove it",
}


class TopNetwork(Strict):
    """A Compose network: a set of services that may reach each other (enforced by nftables)."""

    name: str | None = None  # the network's name (an external network is found by it)
    external: bool = False  # shared with every project that declares the same name external
    internal: bool = False  # its members reach only the cluster, never the outside
    driver: str | None = None  # `bridge` and `overlay` are what shoal does; others are refused
    driver_opts: dict[str, Any] | None = None
    ipam: Any = None
    enable_ipv6: bool = False
    enable_ipv4: bool = True
    attachable: bool = True
    labels: KeyValues = Field(default_factory=dict)


class TopVolume(Strict):
    """A named volume of the project: lives on the node where its service first runs."""

    driver: str | None = None  # only `local`
    driver_opts: dict[str, Any] | None = None
    external: bool = False  # not the project's: found by `name` (or its key), never removed
    name: str | None = None
    labels: KeyValues = Field(default_factory=dict)


class TopSecret(Strict):
    external: bool = False
    name: str | None = None
    file: str | None = None  # read by the CLI; stored as the project's secret <project>_<key>
    environment: str | None = None


class TopConfig(Strict):
    file: str | None = None  # read by the CLI and shipped with the deploy
    content: str | None = None
    environment: str | None = None
    external: bool = False
    name: str | None = None
    template_driver: str | None = None


class Document(Strict):
    services: dict[str, ServiceSection]
    networks: dict[str, TopNetwork | None] = Field(default_factory=dict)
    volumes: dict[str, TopVolume | None] = Field(default_factory=dict)
    secrets: dict[str, TopSecret] = Field(default_factory=dict)
    configs: dict[str, TopConfig] = Field(default_factory=dict)
    name: str | None = None
    version: Any = None  # ignored, as Compose does

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        """`volumes:` with no entries is null in YAML: read it as empty."""
        if isinstance(data, dict):
            empty = ("networks", "volumes", "secrets", "configs")
            return {k: ({} if v is None and k in empty else v) for k, v in data.items()}
        return data

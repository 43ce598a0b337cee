"""The deploy file: a Compose document → a validated, normalised `DeploySpec`.

First step of a deploy: the API hands the YAML text to `parse_compose`; the server turns each
`ServiceSpec` into a stored revision (and `shoal.model.specs.to_container_spec` into containers).
Parsing is strict (`compose_schema`): an unknown or unsupported key is a `ComposeError` naming the
key path and its line (`compose_yaml`). Pure; imports nothing of shoal but `shoal.model`.
"""

from __future__ import annotations

from shoal.model.compose_build import build_deploy
from shoal.model.compose_types import (
    ComposeError,
    DeploySpec,
    IngressSpec,
    PortSpec,
    ResourceSpec,
    RestartSpec,
    SecretRef,
    ServiceSpec,
    UpdatePolicy,
)

__all__ = [
    "ComposeError",
    "DeploySpec",
    "IngressSpec",
    "PortSpec",
    "ResourceSpec",
    "RestartSpec",
    "SecretRef",
    "ServiceSpec",
    "UpdatePolicy",
    "parse_compose",
]


def parse_compose(text: str, project: str) -> DeploySpec:
    """Parse and strictly validate a Compose document; raises ComposeError (one line, with the line).

    `project` names the deploy; when empty, the file's top-level `name:` is used.
    """
    return build_deploy(text, project)

"""The deploy file: a Compose document → a validated, normalised `DeploySpec`.

First step of a deploy: the API hands the YAML text to `parse_compose`; the server turns each
`ServiceSpec` into a stored revision (and `shoal.model.specs.to_container_spec` into containers).
Parsing is strict (`compose_schema`): an unknown or unsupported key is a `ComposeError` naming the
key path and its line (`compose_yaml`). Pure; imports nothing of shoal but `shoal.model`.
"""

from __future__ import annotations

from collections.abc import Mapping

from shoal.model.compose_build import build_deploy
from shoal.model.compose_types import (
    ComposeError,
    DeploySpec,
    IngressSpec,
    PolicyRefused,
    PortSpec,
    ResourceSpec,
    RestartSpec,
    SecretRef,
    ServiceSpec,
    UpdatePolicy,
)
from shoal.model.policy import Grant, GrantOf

__all__ = [
    "ComposeError",
    "DeploySpec",
    "Grant",
    "GrantOf",
    "IngressSpec",
    "PolicyRefused",
    "PortSpec",
    "ResourceSpec",
    "RestartSpec",
    "SecretRef",
    "ServiceSpec",
    "UpdatePolicy",
    "parse_compose",
]


def parse_compose(
    text: str, project: str, files: Mapping[str, bytes] | None = None, policy: Grant | GrantOf | None = None
) -> DeploySpec:
    """Parse and strictly validate a Compose document; ComposeError lists every fault, one a line.

    `project` names the deploy; when empty, the file's top-level `name:` is used. `files`: the
    content of the relative paths the file names, as the CLI sent them. `policy`: the node
    policy's grant for this deploy (None: not checked); its refusals raise PolicyRefused.
    """
    return build_deploy(text, project, files, policy)

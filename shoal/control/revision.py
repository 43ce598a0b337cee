"""What one service revision holds, as stored (jsonb) in `revisions.spec`.

Built at deploy time from the Compose service (`shoal.model.compose`); read by the controller
(placement, rollouts) and by `desired` (the container template each task is stamped from).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shoal.model.compose_types import Dependency, IngressSpec, UpdatePolicy
from shoal.model.container import ContainerSpec


class RevisionSpec(BaseModel):
    model_config = ConfigDict(extra="ignore")

    template: ContainerSpec
    mode: Literal["replicated", "global"] = "replicated"
    replicas: int = 1
    constraints: list[str] = Field(default_factory=list)
    preferences: list[str] = Field(default_factory=list)
    secrets: list[str] = Field(default_factory=list)
    volumes: list[str] = Field(default_factory=list)  # named volumes: pin replicas to their node
    ingress: IngressSpec | None = None
    rebalance: Literal["manual", "auto"] = "manual"  # auto: the controller evens the spread itself
    depends_on: list[Dependency] = Field(default_factory=list)  # services of its project, by short name
    update: UpdatePolicy = Field(default_factory=UpdatePolicy)
    rollback: UpdatePolicy = Field(default_factory=UpdatePolicy)
    source: dict[str, object] = Field(default_factory=dict)  # the Compose service, for inspect


def container_for(
    spec: RevisionSpec, task_id: str, replica: int, generation: int, ip: str | None
) -> ContainerSpec:
    """Stamp the revision's container template into one task's container."""
    return spec.template.model_copy(
        update={
            "id": task_id,
            "replica": replica,
            "generation": generation,
            "ip": ip,
            "hostname": spec.template.hostname or f"{spec.template.service}-{replica}",
        },
        deep=True,
    )

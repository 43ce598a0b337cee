"""The deploy's answer (`POST /deploy`) as typed wire objects, read without pydantic (client/).

`shoal deploy` reads this answer and nothing else before it ends with --detach, and its wait
polls with the models proper. Reading it with plain dataclasses spares the CLI pydantic's load
(about 55 ms of CPU) at the moment the agent runs `runc create` for what was just deployed; on a
small machine the two compete for the same cores. Like every wire object, unknown fields are
ignored, so a newer server still talks to this client.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from shoal.client.errors import BadAnswer


@dataclass(frozen=True)
class DeployedService:
    name: str
    revision: int


@dataclass(frozen=True)
class ChangeReceipt:
    """`shoal.model.deploy_wire.ServiceChange`, read without pydantic."""

    name: str
    change: str  # new, changed, unchanged, prune
    keys: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DeployResult:
    project: str = ""
    services: list[DeployedService] = field(default_factory=list)
    changes: list[ChangeReceipt] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)  # the project's services no longer in the file
    pruned: list[str] = field(default_factory=list)  # ... and removed (with --prune)

    def to_wire(self) -> dict[str, Any]:
        return asdict(self)


def parse_deploy_result(data: Any) -> DeployResult:
    """The answer's JSON as a DeployResult; BadAnswer names the first field that is wrong."""
    if not isinstance(data, dict):
        raise BadAnswer("the deploy answer is not a JSON object")
    project = data.get("project", "")
    if not isinstance(project, str):
        raise BadAnswer("project: must be a string")
    services = data.get("services", [])
    if not isinstance(services, list):
        raise BadAnswer("services: must be a list")
    dry = data.get("dry_run") is True  # nothing stored: a server may answer no revision
    return DeployResult(
        project,
        [_service(i, s, dry) for i, s in enumerate(services)],
        [_change(i, c) for i, c in enumerate(_list(data, "changes"))],
        [str(n) for n in _list(data, "orphans")],
        [str(n) for n in _list(data, "pruned")],
    )


def _list(data: dict[str, Any], key: str) -> list[Any]:
    found = data.get(key, [])
    if not isinstance(found, list):
        raise BadAnswer(f"{key}: must be a list")
    return found


def _change(index: int, data: Any) -> ChangeReceipt:
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise BadAnswer(f"changes.{index}: must be an object with a name")
    keys = data.get("keys", [])
    return ChangeReceipt(data["name"], str(data.get("change", "")), [str(k) for k in keys or []])


def _service(index: int, data: Any, dry: bool = False) -> DeployedService:
    if not isinstance(data, dict):
        raise BadAnswer(f"services.{index}: must be an object")
    name, revision = data.get("name"), data.get("revision")
    if dry and revision is None:
        revision = 0  # 0: nothing stored (what this server answers to a dry run)
    if not isinstance(name, str):
        raise BadAnswer(f"services.{index}.name: must be a string")
    if not isinstance(revision, int) or isinstance(revision, bool):
        raise BadAnswer(f"services.{index}.revision: must be an integer")
    return DeployedService(name, revision)

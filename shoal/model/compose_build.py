"""From a loaded Compose document to `DeploySpec`: validate every part, cross-check, apply the node
policy, normalise — collecting every fault before raising them together.

The body of `shoal.model.compose.parse_compose` (the server) and of the CLI's local check
(`compose_source`), which hands in the tree it interpolated so that lines are the user's. Pure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from shoal.model import compose_forms as forms
from shoal.model.compose_check import cross_check
from shoal.model.compose_convert import Context, project_networks, project_secrets, service_spec
from shoal.model.compose_errors import Problems, add_validation, unknown_key
from shoal.model.compose_extends import Loader, resolve_extends
from shoal.model.compose_policy import key_problems, policy_problems
from shoal.model.compose_service import UNSUPPORTED, ServiceSection
from shoal.model.compose_top import UNSUPPORTED_TOP, Document
from shoal.model.compose_types import ComposeError, DeploySpec, PolicyRefused
from shoal.model.compose_yaml import load
from shoal.model.policy import Grant, GrantOf


def build_deploy(
    text: str, project: str, files: Mapping[str, bytes] | None = None, policy: Grant | GrantOf | None = None
) -> DeploySpec:
    """Parse YAML text (what the server receives) into a DeploySpec; ComposeError lists every fault."""
    return build_from_tree(load(text), project, files or {}, policy)


def build_from_tree(  # noqa: PLR0917
    root: Any,
    project: str,
    files: Mapping[str, bytes],
    policy: Grant | GrantOf | None = None,
    load_other: Loader | None = None,
    problems: Problems | None = None,
    project_from: str = "",
) -> DeploySpec:
    """`files`: the content of each relative path the document names (configs, secrets, binds of a
    file), as the CLI read them; `problems`: faults found before (interpolation), raised with these;
    `project_from`: where `project` came from (`name` for the file's key, or a flag's name);
    `policy`: what the deploy may do to nodes (the server's; None skips the check: the CLI cannot
    know the server's policy). Its refusals raise PolicyRefused, after every other fault."""
    if not isinstance(root, dict):
        raise ComposeError("the deploy file must be a YAML mapping with a services: key")
    problems = problems if problems is not None else Problems(root)
    resolve_extends(root, problems.add, load_other)
    doc, services = _validate(root, problems)
    if not project and doc is not None and doc.name:
        project, project_from = doc.name, "name"
    name = _project_name(project, project_from, problems)
    if doc is not None:
        cross_check(problems, doc, services, files, _names(root))
        key_problems(problems, services)
    problems.raise_all()
    assert doc is not None
    if policy is not None:
        _enforce(root, services, policy if isinstance(policy, Grant) else policy(name))
    return _spec(doc, services, Context(project=name, doc=doc, files=files))


def _enforce(root: Any, services: dict[str, ServiceSection], policy: Grant) -> None:
    refused = Problems(root)
    policy_problems(refused, services, policy)
    if refused:
        lines = refused.lines()
        raise PolicyRefused(lines[0], lines)


def _validate(root: dict[str, Any], problems: Problems) -> tuple[Document | None, dict[str, ServiceSection]]:
    top = {k: v for k, v in root.items() if not str(k).startswith("x-")}
    for key in list(top):
        if key in UNSUPPORTED_TOP:
            problems.add([key], f"not supported by shoal: {UNSUPPORTED_TOP[key]}")
            del top[key]
    raw_services = top.get("services")
    top["services"] = {}
    doc = _model(Document, top, problems, [], {})
    if raw_services is None:
        problems.add(["services"], "required key missing")
        return doc, {}
    if not isinstance(raw_services, dict):
        problems.add(["services"], "must be a mapping")
        return doc, {}
    if not raw_services:
        problems.add(["services"], "no services defined")
    services = {}
    for name, body in raw_services.items():
        found = _model(ServiceSection, _service_keys(body), problems, ["services", name], UNSUPPORTED)
        if found is not None:
            services[str(name)] = found
    return doc, services


def _names(root: dict[str, Any]) -> set[str]:
    services = root.get("services")
    return {str(n) for n in services} if isinstance(services, dict) else set()


def _model(
    model: type[Any], data: Any, problems: Problems, base: list[int | str], refused: dict[str, str]
) -> Any:
    try:
        found: BaseModel = model.model_validate(data)
    except ValidationError as bad:
        add_validation(problems, bad, model, base, refused)
        return None
    return found


def _service_keys(body: Any) -> Any:
    """Drop `x-*` keys but `x-shoal`, and read an empty section (`deploy:` alone) as absent."""
    if not isinstance(body, dict):
        return body
    if "build" in body and "image" not in body:
        body = {**body, "image": "(build)"}  # one error for the service: build is not supported
    return {
        k: v for k, v in body.items() if v is not None and (k == "x-shoal" or not str(k).startswith("x-"))
    }


def project_name_fault(name: str) -> str | None:
    """What is wrong with a project name, if anything (the CLI checks its flag with it)."""
    if not forms.dns_label(name.replace("_", "-")):
        shown = json.dumps(name, ensure_ascii=False)  # one line, whatever the name holds
        return f'invalid project name {shown} (lowercase letters, digits, "-", "_")'
    return None


def _project_name(name: str, source: str, problems: Problems) -> str:
    """A bad name is reported at its source: the file's `name:` (with its line) or the flag."""
    if not name:
        problems.note("no project name: pass one (--project) or set name: in the file")
    elif fault := project_name_fault(name):
        if source == "name":
            problems.add(["name"], fault)
        else:
            problems.note(f"{source}: {fault}" if source else fault)
    return name


def _spec(doc: Document, services: dict[str, ServiceSection], ctx: Context) -> DeploySpec:
    specs = {n: service_spec(n, s, ctx) for n, s in services.items()}
    return DeploySpec(
        project=ctx.project,
        services=specs,
        volumes=sorted(doc.volumes),
        secrets=sorted({r.source for s in specs.values() for r in s.secrets}),
        networks=project_networks(ctx),
        project_secrets=project_secrets(ctx),
    )


def refuse_unknown(model: type[BaseModel], key: str) -> str:
    """The message for an unknown top-level key (exported for the CLI's own checks)."""
    return unknown_key([key], model, UNSUPPORTED_TOP)

"""The OpenAPI 3 document of /api/v1, served at /api/v1/openapi.json.

Request bodies come from the same pydantic models the handlers validate with; responses are
described loosely (objects/arrays) where they are row views.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel

from shoal.control.api.nodes import IngressRequest, LabelsRequest, RelayRequest
from shoal.control.api.policy import PolicyRequest
from shoal.control.api.rebalance import RebalanceRequest
from shoal.control.api.registries import RegistryLoginRequest
from shoal.control.api.secrets import SecretRequest
from shoal.control.api.services import ScaleRequest
from shoal.control.api.tokens import JoinTokenRequest, TokenRequest
from shoal.model.deploy_wire import DeployRequest
from shoal.model.ingress_ca import IntermediateRequest
from shoal.model.join_wire import JoinRequest
from shoal.model.state import NodeState
from shoal.model.status import NodeStatus

OBJ: dict[str, Any] = {"type": "object"}
ARR: dict[str, Any] = {"type": "array", "items": {"type": "object"}}
OK: dict[str, Any] = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
TEXT = "text"

# (method, path, summary, auth, request model, response schema, query params)
Route = tuple[str, str, str, bool, type[BaseModel] | None, dict[str, Any] | str, list[tuple[str, str]]]
ROUTES: list[Route] = [
    ("get", "/api/v1/health", "Server and database health", False, None, OBJ, []),
    ("get", "/api/v1/ca", "The cluster CA certificate (PEM)", False, None, TEXT, []),
    ("get", "/api/v1/whoami", "Who the token belongs to", True, None, OBJ, []),
    ("get", "/api/v1/servers", "The servers of the cluster and which one leads", True, None, ARR, []),
    ("post", "/api/v1/join", "Join a node with a join token", False, JoinRequest, OBJ, []),
    (
        "get",
        "/api/v1/nodes/{name}/state",
        "Long-poll a node's state",
        True,
        None,
        "NodeState",
        [("since", "integer"), ("wait", "integer")],
    ),
    ("post", "/api/v1/nodes/{name}/status", "Report a node's status (heartbeat)", True, NodeStatus, OK, []),
    (
        "post",
        "/api/v1/nodes/{name}/ingress-ca",
        "Sign an ingress node's intermediate CA request (internal TLS)",
        True,
        IntermediateRequest,
        OBJ,
        [],
    ),
    ("get", "/api/v1/nodes", "List nodes", True, None, ARR, []),
    ("get", "/api/v1/nodes/{name}", "Inspect a node", True, None, OBJ, []),
    ("delete", "/api/v1/nodes/{name}", "Remove a node", True, None, OK, []),
    ("post", "/api/v1/nodes/{name}/drain", "Drain a node", True, None, OBJ, []),
    ("post", "/api/v1/nodes/{name}/activate", "Activate a node", True, None, OBJ, []),
    ("post", "/api/v1/nodes/{name}/labels", "Set or remove node labels", True, LabelsRequest, OBJ, []),
    ("post", "/api/v1/nodes/{name}/relay", "Mark or unmark a node as a relay", True, RelayRequest, OBJ, []),
    (
        "post",
        "/api/v1/nodes/{name}/ingress",
        "Run the ingress on a node or stop it",
        True,
        IngressRequest,
        OBJ,
        [],
    ),
    ("post", "/api/v1/deploy", "Deploy a Compose document", True, DeployRequest, OBJ, []),
    ("get", "/api/v1/services", "List services", True, None, ARR, []),
    ("get", "/api/v1/services/{name}", "Inspect a service", True, None, OBJ, []),
    ("delete", "/api/v1/services/{name}", "Remove a service", True, None, OK, []),
    ("post", "/api/v1/services/{name}/scale", "Scale a service", True, ScaleRequest, OBJ, []),
    ("post", "/api/v1/services/{name}/restart", "Restart every replica", True, None, OBJ, []),
    ("post", "/api/v1/services/{name}/rollback", "Roll back to the previous revision", True, None, OBJ, []),
    (
        "post",
        "/api/v1/services/{name}/rebalance",
        "Move replicas back to an even spread (or plan it: dry_run)",
        True,
        RebalanceRequest,
        OBJ,
        [("project", "string")],
    ),
    (
        "get",
        "/api/v1/services/{name}/rebalance",
        "Progress of the last rebalance asked for",
        True,
        None,
        OBJ,
        [("project", "string")],
    ),
    ("get", "/api/v1/tasks", "List tasks (ps)", True, None, ARR, [("node", "string"), ("service", "string")]),
    ("get", "/api/v1/secrets", "List secrets (names only)", True, None, ARR, []),
    ("post", "/api/v1/secrets", "Create or replace a secret", True, SecretRequest, OBJ, []),
    ("delete", "/api/v1/secrets/{name}", "Delete a secret", True, None, OK, [("project", "string")]),
    (
        "get",
        "/api/v1/volumes",
        "List named volumes and their nodes",
        True,
        None,
        ARR,
        [("project", "string")],
    ),
    (
        "delete",
        "/api/v1/volumes/{name}",
        "Forget a named volume no service uses",
        True,
        None,
        OBJ,
        [("project", "string")],
    ),
    (
        "get",
        "/api/v1/registries",
        "List registry logins (host, username; never passwords)",
        True,
        None,
        ARR,
        [],
    ),
    ("post", "/api/v1/registries", "Store or replace a registry login", True, RegistryLoginRequest, OBJ, []),
    ("delete", "/api/v1/registries/{host}", "Remove a registry login", True, None, OK, []),
    ("get", "/api/v1/events", "List events", True, None, ARR, [("since", "integer"), ("limit", "integer")]),
    ("get", "/api/v1/tokens", "List API tokens", True, None, ARR, []),
    ("get", "/api/v1/metrics", "The cluster's state as Prometheus metrics", True, None, TEXT, []),
    ("get", "/api/v1/nodes/{name}/metrics", "A node agent's Prometheus metrics", True, None, TEXT, []),
    (
        "get",
        "/api/v1/metrics/scrape-config",
        "A Prometheus scrape config for the cluster and every agent",
        True,
        None,
        TEXT,
        [("token_file", "string"), ("ca_file", "string")],
    ),
    ("post", "/api/v1/tokens", "Create an API token", True, TokenRequest, OBJ, []),
    ("delete", "/api/v1/tokens/{token_id}", "Delete an API token", True, None, OK, []),
    ("get", "/api/v1/join-tokens", "List join tokens", True, None, ARR, []),
    ("post", "/api/v1/join-tokens", "Create a join token", True, JoinTokenRequest, OBJ, []),
    ("delete", "/api/v1/join-tokens/{token_id}", "Revoke a join token", True, None, OK, []),
    ("get", "/api/v1/policy", "The current node policy", True, None, OBJ, []),
    ("put", "/api/v1/policy", "Set the node policy (a new version)", True, PolicyRequest, OBJ, []),
    ("get", "/api/v1/policy/versions", "Every node policy version", True, None, ARR, [("limit", "integer")]),
    ("get", "/api/v1/policy/versions/{number}", "One node policy version", True, None, OBJ, []),
]
# The SSE stream is documented but never fuzzed (it does not end).
STREAM = ("get", "/api/v1/events/stream", "Server-sent events", True, None, TEXT, [("since", "integer")])
ERROR = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}


def _params(path: str, query: list[tuple[str, str]]) -> list[dict[str, Any]]:
    names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    out = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names]
    return out + [{"name": n, "in": "query", "required": False, "schema": {"type": t}} for n, t in query]


def _response(schema: dict[str, Any] | str) -> dict[str, Any]:
    if schema == TEXT:
        return {"description": "text", "content": {"text/plain": {"schema": {"type": "string"}}}}
    ref = {"$ref": f"#/components/schemas/{schema}"} if isinstance(schema, str) else schema
    return {"description": "success", "content": {"application/json": {"schema": ref}}}


def _operation_id(method: str, path: str) -> str:
    return method + "_" + path.removeprefix("/api/v1/").replace("/", "_").replace("{", "").replace("}", "")


def _operation(route: Route) -> dict[str, Any]:
    method, path, summary, secured, model, response, query = route
    op: dict[str, Any] = {
        "summary": summary,
        "operationId": _operation_id(method, path),
        "parameters": _params(path, query),
        "responses": {
            "200": _response(response),
            "default": _response({"$ref": "#/components/schemas/Error"}),
        },
    }
    if model is not None:
        schema = {"$ref": f"#/components/schemas/{model.__name__}"}
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
    op["security"] = [{"bearer": []}] if secured else []
    return op


def _schemas() -> dict[str, Any]:
    models: list[type[BaseModel]] = [m for r in ROUTES if (m := r[4]) is not None] + [NodeState]
    out: dict[str, Any] = {"Error": ERROR}
    for model in models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    return out


@cache
def document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in [*ROUTES, STREAM]:
        paths.setdefault(route[1], {})[route[0]] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {"title": "shoal API", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }

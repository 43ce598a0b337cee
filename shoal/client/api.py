"""The API client: typed methods over exactly the routes of docs/interfaces.md.

Used by the CLI (people's tokens) and by the agent (its node credential: join, the node-state
long-poll, status reports). Responses are parsed into shoal.client.models / shoal.model objects.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from shoal.client.errors import BadAnswer
from shoal.client.lazy import LazyModule
from shoal.client.receipt import DeployResult, parse_deploy_result
from shoal.client.sse import parse_sse
from shoal.client.transport import DEFAULT_TIMEOUT_S, OnServers, Transport, connect_timeout

if TYPE_CHECKING:
    from pydantic import BaseModel

    from shoal.client import models as m
    from shoal.model import exec_wire, ingress_ca, join_wire, state
    from shoal.model import policy as node_policy
    from shoal.model.state import NodeState
    from shoal.model.status import NodeStatus
else:  # loaded when an answer is parsed: a request need not wait for pydantic (see client.lazy)
    m = LazyModule("shoal.client.models")
    exec_wire = LazyModule("shoal.model.exec_wire")
    join_wire = LazyModule("shoal.model.join_wire")
    state = LazyModule("shoal.model.state")
    node_policy = LazyModule("shoal.model.policy")
    ingress_ca = LazyModule("shoal.model.ingress_ca")

T = TypeVar("T", bound="BaseModel")
R = TypeVar("R")
LONG_POLL_MARGIN_S = 15.0
SIGN_TIMEOUT_S = 10.0


def _seg(name: str) -> str:
    """A name as one URL path segment."""
    return quote(name, safe="")


def _read(parse: Callable[[], R]) -> R:
    """An answer read into its models; one they refuse is a BadAnswer naming the first field."""
    from pydantic import ValidationError  # noqa: PLC0415 (loaded with the models, see above)

    try:
        return parse()
    except ValidationError as exc:
        first = exc.errors()[0]
        raise BadAnswer(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from exc


def _params(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


class Client:
    """One cluster, one token (a person's API token or a node's credential); its transport fails
    over between the cluster's servers (`servers`: those known before; `on_servers`: told of a
    changed list, to keep it)."""

    def __init__(
        self,
        server: str,
        token: str | None = None,
        ca: Path | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        *,
        servers: Sequence[str] = (),
        on_servers: OnServers | None = None,
    ) -> None:
        self.transport = Transport(server, token, ca, timeout, servers=tuple(servers), on_servers=on_servers)
        self.server = self.transport.root

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.transport.close()

    def _one(self, model: type[T], method: str, path: str, **kwargs: Any) -> T:
        data = self.transport.call_json(method, path, **kwargs)
        return _read(lambda: model.model_validate(data))

    def _list(self, model: type[T], path: str, **params: Any) -> list[T]:
        from pydantic import TypeAdapter  # noqa: PLC0415 (loaded with the models, see above)

        data = self.transport.call_json("GET", path, params=_params(**params))
        return _read(lambda: TypeAdapter(list[model]).validate_python(data))  # type: ignore[valid-type]

    def _ok(self, method: str, path: str, **kwargs: Any) -> None:
        self.transport.call(method, path, **kwargs)

    # --- meta
    def health(self) -> m.Health:
        return self._one(m.Health, "GET", "/health")

    def whoami(self) -> m.WhoAmI:
        return self._one(m.WhoAmI, "GET", "/whoami")

    def servers(self) -> list[m.Server]:
        return self._list(m.Server, "/servers")

    # --- nodes
    def nodes(self) -> list[m.Node]:
        return self._list(m.Node, "/nodes")

    def node(self, name: str) -> m.NodeDetail:
        return self._one(m.NodeDetail, "GET", f"/nodes/{_seg(name)}")

    def drain_node(self, name: str) -> m.Node:
        return self._one(m.Node, "POST", f"/nodes/{_seg(name)}/drain")

    def activate_node(self, name: str) -> m.Node:
        return self._one(m.Node, "POST", f"/nodes/{_seg(name)}/activate")

    def label_node(self, name: str, labels: dict[str, str | None]) -> m.Node:
        """Set labels; a value of None removes that label."""
        return self._one(m.Node, "POST", f"/nodes/{_seg(name)}/labels", json={"labels": labels})

    def set_node_relay(self, name: str, relay: bool) -> m.Node:
        """Mark the node as a relay for NAT'd nodes (when public), or unmark it."""
        return self._one(m.Node, "POST", f"/nodes/{_seg(name)}/relay", json={"relay": relay})

    def set_node_ingress(self, name: str, ingress: bool) -> m.Node:
        """Run the HTTPS ingress on the node, or stop it."""
        return self._one(m.Node, "POST", f"/nodes/{_seg(name)}/ingress", json={"ingress": ingress})

    def remove_node(self, name: str) -> None:
        self._ok("DELETE", f"/nodes/{_seg(name)}")

    # --- deploy, services, tasks
    def deploy(
        self,
        compose: str,
        project: str | None = None,
        dry_run: bool = False,
        *,
        prune: bool = False,
        files: dict[str, bytes] | None = None,
        keep: Sequence[str] = (),
    ) -> DeployResult:
        """Send a Compose file (interpolated) and the files it names; with dry_run the server says
        what would change and stores nothing; with prune it removes the project's services the
        file no longer has (`keep`: those left out by profiles, never pruned)."""
        body: dict[str, Any] = _params(compose=compose, project=project)
        if dry_run:
            body["dry_run"] = True
        if prune:
            body["prune"] = True
        if files:
            body["files"] = {k: base64.b64encode(v).decode() for k, v in files.items()}
        if keep:
            body["keep"] = list(keep)
        answer = self.transport.call_json("POST", "/deploy", json=body)
        return parse_deploy_result(answer)  # no pydantic: see client.receipt

    def services(self) -> list[m.Service]:
        return self._list(m.Service, "/services")

    def service(self, name: str, project: str | None = None) -> m.ServiceDetail:
        return self._one(m.ServiceDetail, "GET", f"/services/{_seg(name)}", params=_params(project=project))

    def scale(self, name: str, replicas: int, project: str | None = None) -> m.ServiceDetail:
        return self._one(
            m.ServiceDetail,
            "POST",
            f"/services/{_seg(name)}/scale",
            json={"replicas": replicas},
            params=_params(project=project),
        )

    def restart(self, name: str, project: str | None = None) -> m.ServiceDetail:
        path = f"/services/{_seg(name)}/restart"
        return self._one(m.ServiceDetail, "POST", path, params=_params(project=project))

    def rollback(self, name: str, project: str | None = None) -> m.ServiceDetail:
        path = f"/services/{_seg(name)}/rollback"
        return self._one(m.ServiceDetail, "POST", path, params=_params(project=project))

    def rebalance(self, name: str, project: str | None = None, dry_run: bool = False) -> m.Rebalance:
        path, params = f"/services/{_seg(name)}/rebalance", _params(project=project)
        return self._one(m.Rebalance, "POST", path, json={"dry_run": dry_run}, params=params)

    def rebalance_progress(self, name: str, project: str | None = None) -> m.Rebalance:
        path = f"/services/{_seg(name)}/rebalance"
        return self._one(m.Rebalance, "GET", path, params=_params(project=project))

    def remove_service(self, name: str, project: str | None = None) -> None:
        self._ok("DELETE", f"/services/{_seg(name)}", params=_params(project=project))

    def tasks(
        self, node: str | None = None, service: str | None = None, project: str | None = None
    ) -> list[m.Task]:
        return self._list(m.Task, "/tasks", node=node, service=service, project=project)

    def logs(
        self,
        name: str,
        follow: bool = False,
        since: str | None = None,
        tail: int | None = None,
        project: str | None = None,
    ) -> Iterator[str]:
        """The replicas' merged log lines (`<replica>| <line>`), streamed as they come."""
        params = _params(follow=int(follow), since=since, tail=tail, project=project)
        with self.transport.stream("GET", f"/services/{_seg(name)}/logs", params=params) as response:
            yield from response.iter_lines()

    def exec(
        self,
        name: str,
        cmd: Sequence[str],
        replica: int | None = None,
        stdin: bytes | None = None,
        project: str | None = None,
    ) -> exec_wire.ExecResult:
        body: dict[str, Any] = _params(cmd=list(cmd), replica=replica)
        if stdin is not None:
            body["stdin_b64"] = base64.b64encode(stdin).decode()
        path = f"/services/{_seg(name)}/exec"
        return self._one(
            exec_wire.ExecResult, "POST", path, json=body, timeout=None, params=_params(project=project)
        )

    # --- projects
    def projects(self) -> list[m.Project]:
        return self._list(m.Project, "/projects")

    def remove_project(self, name: str, volumes: bool = False) -> dict[str, Any]:
        params = _params(volumes=1 if volumes else None)
        answer = self.transport.call_json("DELETE", f"/projects/{_seg(name)}", params=params)
        return dict(answer) if isinstance(answer, dict) else {}

    # --- volumes
    def volumes(self, project: str | None = None) -> list[m.Volume]:
        return self._list(m.Volume, "/volumes", project=project)

    def remove_volume(self, name: str, project: str | None = None) -> m.Volume:
        return self._one(m.Volume, "DELETE", f"/volumes/{_seg(name)}", params=_params(project=project))

    # --- secrets
    def secrets(self) -> list[m.SecretInfo]:
        return self._list(m.SecretInfo, "/secrets")

    def create_secret(self, name: str, value: bytes, project: str = "") -> None:
        body = {"name": name, "value_b64": base64.b64encode(value).decode(), "project": project}
        self._ok("POST", "/secrets", json=body)

    def remove_secret(self, name: str, project: str = "") -> None:
        self._ok("DELETE", f"/secrets/{_seg(name)}", params={"project": project} if project else None)

    # --- registry logins
    def registry_logins(self) -> list[m.RegistryLogin]:
        return self._list(m.RegistryLogin, "/registries")

    def registry_login(self, host: str, username: str, password: str) -> m.RegistryLogin:
        body = {"host": host, "username": username, "password": password}
        return self._one(m.RegistryLogin, "POST", "/registries", json=body)

    def remove_registry_login(self, host: str) -> None:
        self._ok("DELETE", f"/registries/{_seg(host)}")

    # --- the node policy (admin)
    def policy(self) -> node_policy.PolicyVersion:
        return self._one(node_policy.PolicyVersion, "GET", "/policy")

    def set_policy(self, document: str) -> node_policy.PolicyVersion:
        return self._one(node_policy.PolicyVersion, "PUT", "/policy", json={"document": document})

    def policy_versions(self) -> list[node_policy.PolicyVersion]:
        return self._list(node_policy.PolicyVersion, "/policy/versions")

    # --- events
    def events(self, since: int | None = None, limit: int | None = None) -> list[m.Event]:
        return self._list(m.Event, "/events", since=since, limit=limit)

    def stream_events(self, since: int | None = None) -> Iterator[m.Event]:
        """Events as they happen (server-sent events), after `since` (default: only new ones).
        The server ends a stream after a while (`stream_max_s`): it is opened again from the last
        event received, so the caller sees one endless stream."""
        while True:
            with self.transport.stream("GET", "/events/stream", params=_params(since=since)) as response:
                for data in parse_sse(response.iter_lines()):
                    event = _read(lambda data=data: m.Event.model_validate(data))  # type: ignore[misc]
                    since = event.id
                    yield event

    # --- tokens
    def tokens(self) -> list[m.TokenInfo]:
        return self._list(m.TokenInfo, "/tokens")

    def create_token(self, role: str, name: str = "") -> m.NewToken:
        return self._one(m.NewToken, "POST", "/tokens", json={"role": role, "name": name})

    def remove_token(self, token_id: str) -> None:
        self._ok("DELETE", f"/tokens/{_seg(token_id)}")

    def create_join_token(
        self, ttl_s: float | None = None, uses: int | None = None, grants: join_wire.JoinGrants | None = None
    ) -> m.NewJoinToken:
        """A join token; `grants`: the labels, ingress flag and relay mark nodes joining with it get."""
        given = grants.model_dump() if grants else {}
        return self._one(m.NewJoinToken, "POST", "/join-tokens", json=_params(ttl_s=ttl_s, uses=uses) | given)

    # --- the agent's side (a node credential)
    def get_node_state(self, name: str, since: int = -1, wait: float = 0) -> NodeState:
        """The node's state once its version exceeds `since`, or the current one after `wait` seconds."""
        params = {"since": since, "wait": int(wait)}
        timeout = connect_timeout(max(wait, 0) + LONG_POLL_MARGIN_S)
        path = f"/nodes/{_seg(name)}/state"
        return self._one(state.NodeState, "GET", path, params=params, timeout=timeout)

    def post_status(self, name: str, status: NodeStatus) -> None:
        """Report what the node observes; also its heartbeat."""
        self._ok("POST", f"/nodes/{_seg(name)}/status", json=status.model_dump(mode="json"))

    def sign_ingress_ca(self, name: str, csr_pem: str) -> str:
        """The server's signature on this ingress node's intermediate CA request (PEM certificate)."""
        path = f"/nodes/{_seg(name)}/ingress-ca"
        timeout = connect_timeout(SIGN_TIMEOUT_S)  # the agent's reconcile pass waits for it
        body = {"csr_pem": csr_pem}
        signed = self._one(ingress_ca.IntermediateCert, "POST", path, json=body, timeout=timeout)
        return signed.certificate_pem

"""Rows → the node state document each agent long-polls (shoal.model.state.NodeState).

Reads the store; pure apart from that. The document's `version` is the node's `state_version`,
which every change affecting the node bumps.
"""

from __future__ import annotations

import base64
import datetime
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel

from shoal.control.mesh import Mesh, MeshNode, may_direct, plan_mesh, relay_allowed
from shoal.control.revision import RevisionSpec, container_for
from shoal.control.store import nodes, registries, secrets, services, tasks
from shoal.control.store import policy as node_policy
from shoal.control.store.db import Conn, Row, cluster_version
from shoal.control.vault import Vault
from shoal.model.addressing import CLUSTER_DOMAIN, overlay_ip
from shoal.model.container import ContainerSpec, networks_of
from shoal.model.deploy_wire import split_qualified
from shoal.model.registry import RegistryAuth, logins_for, registry_host
from shoal.model.state import (
    DnsRecord,
    IngressRoute,
    IngressSettings,
    NetworkMembers,
    NodeState,
    SecretValue,
)

DOMAIN = CLUSTER_DOMAIN


def dns_records(healthy: list[Row], specs: dict[str, RevisionSpec] | None = None) -> list[DnsRecord]:
    """`<service>.<project>.shoal.internal` → every healthy replica; `<replica>.<service>...` → that
    one (a task's service is the qualified `<project>.<service>`); each network alias and
    container_name of the service as `<alias>.<project>.shoal.internal` → its replicas."""
    by_service: dict[str, list[str]] = defaultdict(list)
    records = []
    for row in healthy:
        name = dns_name(row["service"])
        by_service[name].append(row["ip"])
        records.append(DnsRecord(name=f"{row['replica']}.{name}", addresses=[row["ip"]]))
        spec = (specs or {}).get(row["service"])
        project = split_qualified(row["service"])[0]
        for alias in spec.template.aliases if spec else []:
            by_service[dns_name(f"{project}.{alias}" if project else alias)].append(row["ip"])
    records += [DnsRecord(name=name, addresses=ips) for name, ips in by_service.items()]
    return sorted(records, key=lambda r: r.name)


def dns_name(service: str) -> str:
    """`a.db` (qualified) → `db.a.shoal.internal`."""
    project, short = split_qualified(service)
    return f"{short}.{project}.{DOMAIN}" if project else f"{short}.{DOMAIN}"


def network_members(specs: dict[str, RevisionSpec], addressed: list[Row]) -> dict[str, NetworkMembers]:
    """Every network with the addresses of the replicas on it, cluster-wide (by network key)."""
    members: dict[str, set[str]] = defaultdict(set)
    internal: set[str] = set()
    for row in addressed:
        spec = specs.get(row["service"])
        if spec is None:
            continue
        internal.update(spec.template.internal_networks)
        for key in networks_of(spec.template):
            members[key].add(row["ip"])
    return {
        key: NetworkMembers(key=key, internal=key in internal, members=sorted(ips, key=_ip_order))
        for key, ips in members.items()
    }


def _ip_order(ip: str) -> tuple[int, ...]:
    return tuple(int(part) for part in ip.split("."))


def networks_for(view_networks: dict[str, NetworkMembers], mine: list[ContainerSpec]) -> list[NetworkMembers]:
    """The networks a node's containers are on (the others are no business of its firewall)."""
    keys = sorted({key for c in mine for key in networks_of(c)})
    return [view_networks[k] for k in keys if k in view_networks]


def ingress_routes(specs: dict[str, RevisionSpec], healthy: list[Row]) -> list[IngressRoute]:
    routes = []
    for name, spec in sorted(specs.items()):
        if spec.ingress is None:
            continue
        ups = [f"{r['ip']}:{spec.ingress.port}" for r in healthy if r["service"] == name]
        routes.append(
            IngressRoute(service=name, host=spec.ingress.host, path=spec.ingress.path, upstreams=ups)
        )
    return routes


RevKey = tuple[str, int, datetime.datetime]  # service, revision, when the revision was made


def _rev_key(row: Row) -> RevKey:
    return row["service"], row["revision"], row["rev_created"]


def containers(rows: list[Row], specs: dict[RevKey, RevisionSpec]) -> list[ContainerSpec]:
    return [container_for(specs[_rev_key(r)], r["id"], r["replica"], r["generation"], r["ip"]) for r in rows]


def secret_values(conn: Conn, vault: Vault, wanted: list[ContainerSpec]) -> list[SecretValue]:
    names = sorted({m.source for c in wanted for m in c.mounts if m.kind == "secret"})
    if not names:
        return []
    found = secrets.ciphertexts(conn, names)
    return [
        SecretValue(name=n, value_b64=base64.b64encode(vault.open(found[n])).decode())
        for n in names
        if n in found
    ]


def registry_logins(conn: Conn, vault: Vault, wanted: list[ContainerSpec]) -> list[RegistryAuth]:
    """The logins for the registries this node's images come from, and no other."""
    images = [c.image for c in wanted]
    found = registries.sealed(conn, sorted({registry_host(i) for i in images})) if images else {}
    stored = {
        h: RegistryAuth(host=h, username=u, password=vault.open(c).decode()) for h, (u, c) in found.items()
    }
    return logins_for(images, stored)


@dataclass(frozen=True)
class ClusterView:
    """The cluster-wide parts of every node's state, as of one `cluster.version`."""

    version: int
    nodes: list[Row]
    dns: list[DnsRecord]
    ingress: list[IngressRoute]
    dns_json: str
    ingress_json: str
    mesh: Mesh
    networks: dict[str, NetworkMembers]
    metadata_access: bool = False


@dataclass(frozen=True)
class ServerRoute:
    """The server's own API and web UI, published through ingress under `host`."""

    host: str
    node: str  # the server machine's node: its overlay address is the upstream
    port: int
    ca_pem: str  # the cluster CA the API's certificate chains to
    server_name: str = ""  # a name the API's certificate carries


def server_routes(route: ServerRoute | None, all_nodes: list[Row]) -> list[IngressRoute]:
    row = next((n for n in all_nodes if route is not None and n["name"] == route.node), None)
    if route is None or row is None:
        return []
    ip = overlay_ip(row["subnet"])
    upstream = f"{ip}:{route.port}"
    return [
        IngressRoute(
            service="shoal-server",
            host=route.host,
            upstreams=[upstream],
            upstream_ca_pem=route.ca_pem,
            upstream_server_name=route.server_name,
        )
    ]


def cluster_view(conn: Conn, server_route: ServerRoute | None = None) -> ClusterView:
    # the version first: what is read after it holds every change committed up to it (a task
    # published at this version is among `healthy`), so a state of this version serves it
    version = cluster_version(conn)
    healthy = tasks.healthy(conn)
    specs = {k: RevisionSpec.model_validate(v) for k, v in services.current_specs(conn).items()}
    dns = dns_records(healthy, specs)
    all_nodes = nodes.all_nodes(conn)
    ingress = ingress_routes(specs, healthy) + server_routes(server_route, all_nodes)
    return ClusterView(
        version=version,
        nodes=all_nodes,
        dns=dns,
        ingress=ingress,
        dns_json=_json_list(dns),
        ingress_json=_json_list(ingress),
        mesh=plan_mesh(mesh_nodes(conn, all_nodes), relay_use(nodes.relays_in_use(conn))),
        networks=network_members(specs, tasks.addressed(conn)),
        metadata_access=node_policy.current_document(conn).metadata,
    )


def relay_use(in_use: dict[str, str]) -> dict[str, int]:
    """How many NAT'd nodes go through each relay, from each node's reported relay(s)."""
    counts: dict[str, int] = defaultdict(int)
    for relays in in_use.values():
        for relay in relays.split(","):
            counts[relay] += 1
    return dict(counts)


def mesh_nodes(conn: Conn, rows: list[Row]) -> list[MeshNode]:
    """The mesh's view of the nodes: rows, plus where NAT'd ones were seen and their LAN address."""
    seen, lan = nodes.observed_endpoints(conn), nodes.lan_endpoints(conn)
    return [
        MeshNode(
            r["name"],
            r["subnet"],
            r["public_key"],
            r["endpoint"] or None,
            relay_allowed(bool(r["relay"]), r["labels"] or {}),
            observed=None if r["endpoint"] else seen.get(r["name"]),
            lan=None if r["endpoint"] else lan.get(r["name"]),
            may_direct=may_direct(r["labels"] or {}),
        )
        for r in rows
    ]


def _json_list(items: Sequence[BaseModel]) -> str:
    return "[" + ",".join(item.model_dump_json() for item in items) + "]"


class Builder:
    """Builds node states, reusing the cluster-wide parts while `cluster.version` is unchanged."""

    def __init__(
        self,
        vault: Vault,
        cluster_cidr: str,
        insecure_registries: list[str],
        ingress: IngressSettings | None = None,
        server_route: ServerRoute | None = None,
    ) -> None:
        self._vault = vault
        self._ingress = ingress or IngressSettings(tls="acme")
        self._server_route = server_route
        self._cidr = cluster_cidr
        self._insecure = insecure_registries
        self._view: ClusterView | None = None
        self._revisions: dict[RevKey, RevisionSpec] = {}
        self._lock = threading.Lock()

    def _specs(self, conn: Conn, keys: set[RevKey]) -> dict[RevKey, RevisionSpec]:
        """Revision specs; revisions are immutable (and keyed by creation time), so they are cached."""
        missing = [k for k in keys if k not in self._revisions]
        if missing:
            found = services.revision_specs(conn, [(k[0], k[1]) for k in missing])
            with self._lock:
                if len(self._revisions) > 50000:
                    self._revisions.clear()
                for key in missing:
                    self._revisions[key] = RevisionSpec.model_validate(found[(key[0], key[1])])
        return {k: self._revisions[k] for k in keys}

    def view(self, conn: Conn) -> ClusterView:
        with self._lock:
            if self._view is None or self._view.version != cluster_version(conn):
                self._view = cluster_view(conn, self._server_route)
            return self._view

    def node_state(self, conn: Conn, name: str) -> NodeState:
        """The whole desired state of one node, as of this transaction."""
        return self._state(conn, name, self.view(conn), shared=True)

    def node_state_json(self, conn: Conn, name: str) -> str:
        """`node_state` as JSON, splicing in the cluster-wide parts serialised once per version."""
        view = self.view(conn)
        state = self._state(conn, name, view, shared=False)
        ingress = state.ingress_settings is not None  # set on ingress nodes only
        head = state.model_dump_json(exclude={"dns", "ingress"})
        tail = f',"dns":{view.dns_json},"ingress":{view.ingress_json if ingress else "[]"}}}'
        return head[:-1] + tail

    def _state(self, conn: Conn, name: str, view: ClusterView, shared: bool) -> NodeState:
        node = nodes.require(conn, name)
        rows = tasks.running_on(conn, name)
        part = view.mesh.of(name)
        mine = containers(rows, self._specs(conn, {_rev_key(r) for r in rows}))
        return NodeState(
            version=int(node["state_version"]),
            cluster_version=view.version,
            node=name,
            subnet=node["subnet"],
            cluster_cidr=self._cidr,
            containers=mine,
            peers=part.peers,
            relay=part.relay,
            relays=part.relays,
            relayed=part.relayed,
            dns=view.dns if shared else [],
            ingress=view.ingress if shared and node["ingress"] else [],
            ingress_settings=self._ingress if node["ingress"] else None,
            secrets=secret_values(conn, self._vault, mine),
            registry_auths=registry_logins(conn, self._vault, mine),
            insecure_registries=self._insecure,
            networks=networks_for(view.networks, mine),
            metadata_access=view.metadata_access,
        )

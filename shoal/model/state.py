"""The node state document: everything one node must run, versioned.

Computed by the server (control.desired) from PostgreSQL, long-polled by the agent, kept on
the agent's disk so the node keeps serving through a server outage.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shoal.model.addressing import CLUSTER_CIDR
from shoal.model.base import WIRE_VERSION, Wire
from shoal.model.container import ContainerSpec
from shoal.model.registry import RegistryAuth


class Peer(Wire):
    """Another node of the WireGuard mesh, as this node must see it."""

    name: str
    public_key: str
    endpoint: str | None = None  # host:port; None when the peer is unreachable (behind NAT)
    subnet: str  # the peer's node subnet, e.g. 10.210.3.0/24
    allowed_ips: list[str] = Field(default_factory=list)  # subnet plus subnets relayed through it
    keepalive_s: int = 0


class DnsRecord(Wire):
    name: str  # fully qualified, e.g. web.shoal.internal
    addresses: list[str]


class IngressRoute(Wire):
    service: str
    host: str
    path: str = "/"
    upstreams: list[str] = Field(default_factory=list)  # overlay "ip:port" of healthy replicas
    health_path: str = ""  # active health check path; empty: passive checks only
    upstream_ca_pem: str = ""  # upstreams speak HTTPS under this root (the server's own API); empty: HTTP
    upstream_server_name: str = ""  # the name their certificate carries (they are dialled by address)


class IngressSettings(Wire):
    """How an ingress node gets certificates: ACME in production, an internal CA in tests.

    With `internal`, every ingress node signs with its own intermediate under the same root (its
    certificate given here; its key never leaves the server), so one root certificate verifies
    every ingress node of the cluster.
    """

    tls: Literal["internal", "acme"] = "internal"
    acme_email: str = ""
    acme_ca: str = ""  # ACME directory URL; empty means Caddy's default (Let's Encrypt)
    ca_cert_pem: str = ""


class SecretValue(Wire):
    name: str
    value_b64: str


class NetworkMembers(Wire):
    """One Compose network a container of this node is on, with every replica on it cluster-wide."""

    key: str  # "<project>/<name>", or "/<name>" for an external network
    internal: bool = False  # `internal: true`: no route out of the cluster
    members: list[str] = Field(default_factory=list)  # overlay addresses, sorted


class NodeState(Wire):
    wire_version: int = WIRE_VERSION
    version: int = 0  # monotonic per node; the long-poll's `since`
    cluster_version: int = 0  # of the cluster-wide parts (DNS, ingress): replicas published by it are in
    node: str
    subnet: str  # this node's /24
    cluster_cidr: str = CLUSTER_CIDR
    containers: list[ContainerSpec] = Field(default_factory=list)
    peers: list[Peer] = Field(default_factory=list)
    relay: bool = False  # forward between peers (this node is reachable by NAT'd ones)
    relays: list[str] = Field(default_factory=list)  # NAT'd node: relay candidates, preferred first
    relayed: list[Peer] = Field(default_factory=list)  # NAT'd node: NAT'd nodes it reaches through one
    dns: list[DnsRecord] = Field(default_factory=list)
    ingress: list[IngressRoute] = Field(default_factory=list)
    ingress_settings: IngressSettings | None = None  # set on ingress nodes only
    secrets: list[SecretValue] = Field(default_factory=list)  # only those its containers use
    registry_auths: list[RegistryAuth] = Field(default_factory=list)  # only its images' registries
    insecure_registries: list[str] = Field(default_factory=list)
    networks: list[NetworkMembers] = Field(default_factory=list)  # those its containers are on
    metadata_access: bool = False  # the node policy's `metadata`: containers may reach 169.254.169.254

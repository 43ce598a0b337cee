"""The cluster's addressing convention, shared by server and agent (pure, imports nothing of shoal).

The cluster's address range and DNS domain are stated here once. A node's overlay address is the
first host address of its /24: the agent puts it on the bridge, the server dials agents there,
ingress proxies to the server there, the firewall recognises peers by it.
"""

from __future__ import annotations

import ipaddress

CLUSTER_CIDR = "10.210.0.0/16"  # `server init --cluster-cidr`: each node gets a /24 of it
CLUSTER_DOMAIN = "shoal.internal"  # service names: `<service>.<project>.shoal.internal`


def overlay_ip(subnet: str) -> str:
    """The first host address of a node subnet: its bridge and overlay address."""
    return str(next(ipaddress.ip_network(subnet).hosts()))

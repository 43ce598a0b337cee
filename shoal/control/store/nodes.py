"""Node rows: join (with subnet allocation), heartbeat, drain/activate, labels, relay and ingress, removal."""

from __future__ import annotations

import ipaddress
from typing import Any, LiteralString

from psycopg import sql
from psycopg.types.json import Jsonb

from shoal.control.mesh import NO_DIRECT_LABEL, NO_RELAY_LABEL
from shoal.control.store.db import Conn, Row, cluster_changed, notify_all_nodes, notify_nodes
from shoal.errors import Conflict, NotFound

NODE_COLUMNS = (
    "name, subnet_index, subnet, public_key, endpoint, labels, ingress, relay, role, availability, down,"
    " capacity, last_seen, state_version, created, applied_version, applied_cluster_version"
)


def _select(rest: LiteralString) -> sql.Composed:
    return sql.SQL("SELECT {} FROM nodes ").format(sql.SQL(NODE_COLUMNS)) + sql.SQL(rest)


_JOIN_LOCK = 0x5A0A15


def subnet_for(cluster_cidr: str, index: int) -> str:
    """The index-th /24 of the cluster CIDR."""
    net = ipaddress.ip_network(cluster_cidr)
    subnets = net.subnets(new_prefix=24)
    for i, sub in enumerate(subnets):
        if i == index:
            return str(sub)
    raise Conflict(f"cluster CIDR {cluster_cidr} has no free /24 left")


def _free_index(conn: Conn, cluster_cidr: str) -> int:
    # serialises joins only (a table lock would also stall every heartbeat); UNIQUE backs it up
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_JOIN_LOCK,))
    used = {r["subnet_index"] for r in conn.execute("SELECT subnet_index FROM nodes").fetchall()}
    size = 2 ** (24 - ipaddress.ip_network(cluster_cidr).prefixlen)
    for index in range(1, size):
        if index not in used:
            return index
    raise Conflict(f"cluster CIDR {cluster_cidr} has no free /24 left")


def create(conn: Conn, cluster_cidr: str, fields: dict[str, Any]) -> Row:
    """Insert a joined node with the next free /24; the caller's transaction makes it unique."""
    if get(conn, fields["name"]) is not None:
        raise Conflict(f"node {fields['name']} already exists")
    index = _free_index(conn, cluster_cidr)
    row = conn.execute(
        "INSERT INTO nodes (name, subnet_index, subnet, public_key, endpoint, labels, ingress, relay, role,"
        " capacity, credential_hash, agent_secret, last_seen)"
        " VALUES (%(name)s, %(index)s, %(subnet)s, %(public_key)s, %(endpoint)s, %(labels)s,"
        " %(ingress)s, %(relay)s, %(role)s, %(capacity)s, %(credential_hash)s, %(agent_secret)s, now())"
        " RETURNING *",
        {
            "relay": False,
            **fields,
            "index": index,
            "subnet": subnet_for(cluster_cidr, index),
            "labels": Jsonb(fields["labels"]),
            "capacity": Jsonb(fields["capacity"]),
        },
    ).fetchone()
    assert row is not None
    notify_nodes(conn, [fields["name"]])
    cluster_changed(conn)
    return row


def get(conn: Conn, name: str) -> Row | None:
    return conn.execute(_select("WHERE name = %s"), (name,)).fetchone()


def require(conn: Conn, name: str) -> Row:
    row = get(conn, name)
    if row is None:
        raise NotFound(f"node {name} not found")
    return row


def state_of(row: Row) -> str:
    """What people see of a node: ready, draining or down."""
    return "down" if row["down"] else ("draining" if row["availability"] == "drain" else "ready")


def all_nodes(conn: Conn) -> list[Row]:
    return conn.execute(_select("ORDER BY name")).fetchall()


def by_credential(conn: Conn, credential_hash: str) -> str | None:
    row = conn.execute("SELECT name FROM nodes WHERE credential_hash = %s", (credential_hash,)).fetchone()
    return None if row is None else str(row["name"])


def agent_secret(conn: Conn, name: str) -> str:
    row = conn.execute("SELECT agent_secret FROM nodes WHERE name = %s", (name,)).fetchone()
    if row is None:
        raise NotFound(f"node {name} not found")
    return str(row["agent_secret"])


def state_version(conn: Conn, name: str) -> int:
    row = conn.execute("SELECT state_version FROM nodes WHERE name = %s", (name,)).fetchone()
    if row is None:
        raise NotFound(f"node {name} not found")
    return int(row["state_version"])


def heartbeat(conn: Conn, name: str, capacity: dict[str, Any]) -> bool:
    """Mark the node seen (locking its row); True when the node was down and is back."""
    row = conn.execute(
        "UPDATE nodes n SET last_seen = now(), capacity = %s, down = false FROM"
        " (SELECT down FROM nodes WHERE name = %s FOR UPDATE) old"
        " WHERE n.name = %s RETURNING old.down AS was_down",
        (Jsonb(capacity), name, name),
    ).fetchone()
    if row is None:
        raise NotFound(f"node {name} not found")
    return bool(row["was_down"])


# A report sent up to this long before the stored one crossed it in flight and is dropped; an
# older one means the node's clock went back, and is taken.
CROSSED_S = 5.0


def store_status(conn: Conn, name: str, status: dict[str, Any]) -> bool:
    """Store the node's report unless one it sent later is stored already; whether it was."""
    row = conn.execute(
        "INSERT INTO node_status AS s (node, status) VALUES (%s, %s)"
        " ON CONFLICT (node) DO UPDATE SET status = EXCLUDED.status, updated = now()"
        " WHERE NOT (coalesce((s.status->>'time')::float8, 0)"
        " - coalesce((EXCLUDED.status->>'time')::float8, 0) BETWEEN 1e-9 AND %s) RETURNING node",
        (name, Jsonb(status), CROSSED_S),
    ).fetchone()
    return row is not None


def set_applied(conn: Conn, name: str, version: int, cluster_version: int | None) -> None:
    """The node state version (and its cluster version) the node's agent has fully applied."""
    conn.execute(
        "UPDATE nodes SET applied_version = %s, applied_cluster_version = %s WHERE name = %s",
        (version, cluster_version, name),
    )


def lagging(conn: Conn, cluster_version: int) -> list[str]:
    """Nodes up whose agent reports a cluster version older than `cluster_version` as applied
    (those that report none, older agents, are not known to lag: they are not waited for)."""
    rows = conn.execute(
        "SELECT name FROM nodes WHERE NOT down AND applied_cluster_version < %s ORDER BY name",
        (cluster_version,),
    ).fetchall()
    return [str(r["name"]) for r in rows]


def last_status(conn: Conn, name: str) -> dict[str, Any]:
    row = conn.execute("SELECT status FROM node_status WHERE node = %s", (name,)).fetchone()
    return {} if row is None else dict(row["status"])


def agent_versions(conn: Conn) -> dict[str, str]:
    """Per node: the version of shoal its agent reported last."""
    rows = conn.execute("SELECT node, status->>'agent_version' AS version FROM node_status").fetchall()
    return {r["node"]: r["version"] for r in rows if r["version"]}


def relays_in_use(conn: Conn) -> dict[str, str]:
    """Per node that reports relayed peers: the relay(s) it goes through, comma-joined."""
    rows = conn.execute(
        "SELECT node, (SELECT string_agg(DISTINCT p->>'via', ',' ORDER BY p->>'via')"
        " FROM jsonb_array_elements(status->'peers') AS p WHERE p->>'path' = 'relayed') AS via"
        " FROM node_status"
    ).fetchall()
    return {r["node"]: r["via"] for r in rows if r["via"]}


def observed_endpoints(conn: Conn) -> dict[str, str]:
    """Per node: the endpoint its WireGuard packets come from, as public nodes see it (their
    reported peers; the smallest reporter's name wins, so every view agrees)."""
    rows = conn.execute(
        "SELECT DISTINCT ON (p->>'name') p->>'name' AS node, p->>'endpoint' AS seen"
        " FROM node_status AS s JOIN nodes AS n ON n.name = s.node,"
        " jsonb_array_elements(s.status->'peers') AS p"
        " WHERE coalesce(n.endpoint, '') <> '' AND coalesce(p->>'endpoint', '') <> ''"
        " AND coalesce(p->>'path', 'direct') = 'direct' ORDER BY p->>'name', s.node"
    ).fetchall()
    return {r["node"]: r["seen"] for r in rows}


def lan_endpoints(conn: Conn) -> dict[str, str]:
    """Per NAT'd node: its WireGuard address:port behind its NAT, as its agent reports it."""
    rows = conn.execute(
        "SELECT node, status->>'lan_endpoint' AS lan FROM node_status"
        " WHERE coalesce(status->>'lan_endpoint', '') <> ''"
    ).fetchall()
    return {r["node"]: r["lan"] for r in rows}


def set_availability(conn: Conn, name: str, availability: str) -> Row:
    conn.execute("UPDATE nodes SET availability = %s WHERE name = %s", (availability, name))
    return require(conn, name)


def set_labels(conn: Conn, name: str, changes: dict[str, str | None]) -> Row:
    labels = dict(require(conn, name)["labels"])
    for key, value in changes.items():
        if value is None:
            labels.pop(key, None)
        else:
            labels[key] = value
    conn.execute("UPDATE nodes SET labels = %s WHERE name = %s", (Jsonb(labels), name))
    if {NO_RELAY_LABEL, NO_DIRECT_LABEL} & changes.keys():  # the mesh is in every node's state
        notify_all_nodes(conn)
    return require(conn, name)


def set_relay(conn: Conn, name: str, relay: bool) -> Row:
    """An admin's mark: whether the node relays for NAT'd nodes (when public and not labelled
    `shoal.relay=false`)."""
    if conn.execute("UPDATE nodes SET relay = %s WHERE name = %s", (relay, name)).rowcount == 0:
        raise NotFound(f"node {name} not found")
    notify_all_nodes(conn)  # the mesh is in every node's state
    return require(conn, name)


def set_ingress(conn: Conn, name: str, ingress: bool) -> Row:
    """An admin's choice: whether the node runs the HTTPS ingress (Caddy on 80/443)."""
    if conn.execute("UPDATE nodes SET ingress = %s WHERE name = %s", (ingress, name)).rowcount == 0:
        raise NotFound(f"node {name} not found")
    notify_nodes(conn, [name])
    return require(conn, name)


def remove(conn: Conn, name: str) -> None:
    if conn.execute("DELETE FROM nodes WHERE name = %s", (name,)).rowcount == 0:
        raise NotFound(f"node {name} not found")
    notify_all_nodes(conn)


def heartbeat_ages(conn: Conn) -> list[Row]:
    """Every node's name, role, whether it is down, and seconds since its last heartbeat
    (PostgreSQL's clock, the one heartbeats are stamped with; NULL: never heard from)."""
    return conn.execute(
        "SELECT name, role, down, extract(epoch FROM now() - last_seen)::float8 AS age_s"
        " FROM nodes ORDER BY name"
    ).fetchall()


def mark_down(conn: Conn, names: list[str], grace_s: float) -> list[str]:
    """Mark down those of `names` still silent for longer than the grace (a heartbeat that came
    in since they were judged keeps its node up); return the ones marked."""
    rows = conn.execute(
        "UPDATE nodes SET down = true WHERE name = ANY(%s) AND NOT down"
        " AND (last_seen IS NULL OR last_seen < now() - make_interval(secs => %s)) RETURNING name",
        (names, grace_s),
    ).fetchall()
    return sorted(r["name"] for r in rows)

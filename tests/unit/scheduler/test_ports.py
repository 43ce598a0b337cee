"""Published host ports: one replica per node and port/protocol, 80/443 kept for ingress nodes."""

from __future__ import annotations

from shoal.control.planning import node_info, published_ports
from shoal.control.revision import RevisionSpec
from shoal.control.scheduler import schedule
from shoal.model.container import ContainerSpec, PortMapping
from shoal.model.ports import INGRESS_PORTS
from tests.unit.scheduler.helpers import node, placed, snap, svc, task

INGRESS = dict.fromkeys(INGRESS_PORTS, "ingress")


def test_two_replicas_publishing_one_port_never_share_a_node() -> None:
    plan = schedule(snap([node("a"), node("b")], [svc("web", 3, ports=("8080/tcp",))]))
    assert placed(plan) == [("web", 1, "a"), ("web", 2, "b")]
    (why,) = plan.unplaceable
    assert (why.replica, why.reason) == (3, "host port 8080/tcp is taken on 2 eligible node(s)")


def test_without_published_ports_replicas_share_nodes() -> None:
    assert len(schedule(snap([node("a")], [svc("web", 3)])).place) == 3


def test_same_port_other_protocol_fits_beside_it() -> None:
    services = [svc("dns-tcp", 1, ports=("53/tcp",)), svc("dns-udp", 1, ports=("53/udp",))]
    assert placed(schedule(snap([node("a")], services))) == [("dns-tcp", 1, "a"), ("dns-udp", 1, "a")]


def test_a_running_task_of_another_service_holds_its_port() -> None:
    held = task("old", 1, "a", ports=("8080/tcp",))
    plan = schedule(snap([node("a"), node("b")], [svc("old", 1), svc("web", 1, ports=("8080/tcp",))], [held]))
    assert placed(plan) == [("web", 1, "b")]


def test_a_removed_task_frees_its_port() -> None:
    held = task("gone", 1, "a", ports=("8080/tcp",))
    plan = schedule(snap([node("a")], [svc("web", 1, ports=("8080/tcp",))], [held]))
    assert [r.reason for r in plan.remove] == ["service removed"] and placed(plan) == [("web", 1, "a")]


def test_ingress_nodes_keep_80_and_443() -> None:
    nodes = [node("a", reserved_ports=INGRESS), node("b")]
    plan = schedule(snap(nodes, [svc("web", 1, ports=("443/tcp",))]))
    assert placed(plan) == [("web", 1, "b")]
    only = schedule(snap([nodes[0]], [svc("web", 1, ports=("80/tcp",))]))
    assert only.unplaceable[0].reason == "host port 80/tcp is reserved for ingress on 1 eligible node(s)"


def test_global_service_says_which_node_has_the_port_taken() -> None:
    nodes = [node("a"), node("b")]
    held = task("old", 1, "b", ports=("9000/udp",))
    plan = schedule(snap(nodes, [svc("old", 1), svc("agent", mode="global", ports=("9000/udp",))], [held]))
    assert placed(plan) == [("agent", 1, "a")]
    assert [u.reason for u in plan.unplaceable] == ["host port 9000/udp is taken on node b"]


def test_rows_become_ports_and_ingress_reservations() -> None:
    ports = [
        PortMapping(host_port=8080, container_port=80),
        PortMapping(host_port=53, container_port=53, protocol="udp"),
    ]
    spec = RevisionSpec(template=ContainerSpec(id="", image="x", ports=ports))
    assert published_ports(spec) == ("53/udp", "8080/tcp")
    row = {"name": "a", "availability": "active", "down": False, "subnet_index": 1, "ingress": True}
    assert node_info(row).reserved_ports == INGRESS
    assert node_info({**row, "ingress": False}).reserved_ports == {}
    assert node_info({**row, "ingress": False, "endpoint": "[2001:db8::1]:51999"}).reserved_ports == {
        "51999/udp": "WireGuard"
    }

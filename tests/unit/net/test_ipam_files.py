"""IPAM persistence and the container's generated files."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoal.agent.net.files import render_hosts, render_resolv_conf, write_container_files
from shoal.agent.net.ipam import Ipam, IpamError, bridge_address
from shoal.errors import Conflict


def test_allocations_skip_the_bridge_and_survive_a_restart(tmp_path: Path) -> None:
    ipam = Ipam(tmp_path / "ipam.json", "10.210.3.0/24")
    assert bridge_address("10.210.3.0/24") == "10.210.3.1"
    assert ipam.allocate("a") == "10.210.3.2"
    assert ipam.allocate("b") == "10.210.3.3"
    again = Ipam(tmp_path / "ipam.json", "10.210.3.0/24")
    assert again.allocate("a") == "10.210.3.2"
    again.release("a")
    assert Ipam(tmp_path / "ipam.json", "10.210.3.0/24").allocate("c") == "10.210.3.2"


def test_wanted_address_is_honoured_or_refused(tmp_path: Path) -> None:
    ipam = Ipam(tmp_path / "ipam.json", "10.210.3.0/24")
    assert ipam.allocate("a", "10.210.3.50") == "10.210.3.50"
    with pytest.raises(Conflict):
        ipam.allocate("b", "10.210.3.50")
    with pytest.raises(IpamError):
        ipam.allocate("b", "10.210.3.1")
    with pytest.raises(IpamError):
        ipam.allocate("b", "10.210.9.5")


def test_full_subnet_is_an_error(tmp_path: Path) -> None:
    ipam = Ipam(tmp_path / "ipam.json", "10.210.3.0/30")
    assert ipam.allocate("a") == "10.210.3.2"
    with pytest.raises(IpamError, match="no free address"):
        ipam.allocate("b")


def test_new_subnet_forgets_old_allocations(tmp_path: Path) -> None:
    Ipam(tmp_path / "ipam.json", "10.210.3.0/24").allocate("a", "10.210.3.9")
    assert Ipam(tmp_path / "ipam.json", "10.210.4.0/24").allocate("a") == "10.210.4.2"


def test_container_files(tmp_path: Path) -> None:
    files = write_container_files(tmp_path / "c", "web-1", "10.210.3.2", "10.210.3.1", "shoal.internal")
    assert files.resolv_conf.read_text() == render_resolv_conf("10.210.3.1", "shoal.internal")
    assert "nameserver 10.210.3.1\nsearch shoal.internal\n" in files.resolv_conf.read_text()
    assert "10.210.3.2\tweb-1\n" in render_hosts("web-1", "10.210.3.2")
    assert files.hostname.read_text() == "web-1\n"


def test_extra_hosts_and_dns_search_are_written(tmp_path: Path) -> None:
    files = write_container_files(
        tmp_path, "web", "10.0.0.5", "10.0.0.1", "shoal.internal",
        extra_hosts={"db.example": "192.0.2.7", "ipv6.example": "2001:db8::1"}, search=["corp.example"],
    )  # fmt: skip
    hosts = files.hosts.read_text().splitlines()
    assert hosts[-2:] == ["192.0.2.7\tdb.example", "2001:db8::1\tipv6.example"]
    assert "search shoal.internal corp.example" in files.resolv_conf.read_text().splitlines()
    assert render_hosts("web", "10.0.0.5") == render_hosts("web", "10.0.0.5", {})

"""Ingress hosts belong to one project, never to the server's own API/UI host."""

from __future__ import annotations

from shoal.control.ingress_claims import Claim, conflicts
from shoal.model.compose_types import IngressSpec

HELD = [Claim("b.shop", "shop.example.com", "/"), Claim("a.api", "app.example.com", "/api")]


def route(host: str, path: str = "/") -> IngressSpec:
    return IngressSpec(host=host, path=path, port=8080)


def test_another_projects_host_is_refused_on_any_path_and_in_any_case() -> None:
    assert conflicts("a", {"web": route("Shop.Example.com", "/other")}, HELD) == [
        "services.web.x-shoal.ingress.host: Shop.Example.com is held by project b (service b.shop)"
    ]


def test_the_servers_own_host_is_refused() -> None:
    got = conflicts("a", {"web": route("admin.example.com")}, HELD, server_host="admin.example.com")
    assert got == [
        "services.web.x-shoal.ingress.host: admin.example.com"
        " is where shoal's own API and web UI are published"
    ]


def test_a_project_shares_its_host_on_other_paths_only() -> None:
    assert conflicts("a", {"web": route("app.example.com", "/")}, HELD) == []
    assert conflicts("a", {"web": route("app.example.com", "/api")}, HELD) == [
        "services.web.x-shoal.ingress.host: app.example.com/api is published by service a.api"
    ]


def test_a_service_keeps_its_own_route_on_a_new_deploy() -> None:
    assert conflicts("a", {"api": route("app.example.com", "/api")}, HELD) == []
    assert conflicts("b", {"shop": route("shop.example.com")}, HELD) == []


def test_two_services_of_one_file_may_not_share_a_route() -> None:
    got = conflicts("c", {"one": route("c.example.com"), "two": route("c.example.com")}, [])
    assert got == [
        "services.two.x-shoal.ingress.host: c.example.com/ is published by service one of this file as well"
    ]

"""Every supported Compose feature parses into the normalised ServiceSpec."""

from __future__ import annotations

import textwrap

import pytest

from shoal.model.compose import DeploySpec, ServiceSpec, parse_compose
from shoal.model.compose_types import ComposeError


def parse(text: str, project: str = "p") -> DeploySpec:
    return parse_compose(textwrap.dedent(text), project)


def one(body: str, extra: str = "") -> ServiceSpec:
    """Parse a single service `web` whose body is given (indented under it)."""
    text = "services:\n  web:\n    image: app:1\n" + textwrap.indent(textwrap.dedent(body), "    ")
    return parse_compose(text + textwrap.dedent(extra), "p").services["web"]


def test_minimal_service_has_defaults() -> None:
    spec = parse("""
        services:
          web:
            image: registry:5000/app:1
    """)
    web = spec.services["web"]
    assert spec.project == "p"
    assert (web.name, web.image, web.mode, web.replicas) == ("web", "registry:5000/app:1", "replicated", 1)
    assert web.command is None and web.entrypoint is None and web.healthcheck is None
    assert web.update_config.parallelism == 1 and web.update_config.order == "stop-first"
    assert web.update_config.monitor_s == 5.0 and web.update_config.failure_action == "pause"
    assert web.restart_policy.condition == "any" and web.stop_grace_period_s == 10.0


def test_project_from_file_name_and_version_ignored() -> None:
    spec = parse(
        """
        version: "3.8"
        name: shop
        services:
          web: {image: a}
    """,
        project="",
    )
    assert spec.project == "shop"
    assert parse("name: shop\nservices: {web: {image: a}}", project="other").project == "other"


def test_command_and_entrypoint_string_is_shell_split() -> None:
    web = one("""
        command: sh -c "echo 'hi there' && sleep 1"
        entrypoint: ["/bin/tini", "--"]
    """)
    assert web.command == ["sh", "-c", "echo 'hi there' && sleep 1"]
    assert web.entrypoint == ["/bin/tini", "--"]
    assert one("command: [sleep, 10]").command == ["sleep", "10"]


def test_environment_list_and_map() -> None:
    assert one("environment: [A=1, B=x=y, C=]").environment == {"A": "1", "B": "x=y", "C": ""}
    mapped = one("environment: {A: 1, B: true, C: hello, D: 1.5}").environment
    assert mapped == {"A": "1", "B": "true", "C": "hello", "D": "1.5"}


def test_ports_short_and_long() -> None:
    web = one("""
        ports:
          - "8080:80"
          - "80"
          - 81
          - "127.0.0.1:9090:90/udp"
          - "[::1]:7070:70"
          - {target: 443, published: "8443", protocol: tcp, mode: host}
    """)
    got = [(p.host_ip, p.published, p.target, p.protocol) for p in web.ports]
    assert got == [
        ("", 8080, 80, "tcp"),
        ("", None, 80, "tcp"),
        ("", None, 81, "tcp"),
        ("127.0.0.1", 9090, 90, "udp"),
        ("::1", 7070, 70, "tcp"),
        ("", 8443, 443, "tcp"),
    ]


def test_volumes_named_bind_tmpfs() -> None:
    web = one(
        """
        volumes:
          - data:/var/lib/data
          - logs:/logs:ro
          - /etc/ssl:/etc/ssl:ro
          - type: tmpfs
            target: /cache
            tmpfs: {size: 64m}
          - {type: volume, source: data, target: /again, read_only: true}
        """,
        "volumes:\n  data:\n  logs: {}\n",
    )
    got = [(m.kind, m.source, m.target, m.read_only, m.size_bytes) for m in web.mounts]
    assert got == [
        ("volume", "data", "/var/lib/data", False, None),
        ("volume", "logs", "/logs", True, None),
        ("bind", "/etc/ssl", "/etc/ssl", True, None),
        ("tmpfs", "", "/cache", False, 64 << 20),
        ("volume", "data", "/again", True, None),
    ]
    assert web.volume_names == ["data", "logs"]


def test_secrets_short_long_and_renamed() -> None:
    spec = parse("""
        services:
          web:
            image: a
            secrets:
              - db
              - source: api
                target: api_key
              - {source: cert, target: /etc/ssl/cert.pem}
        secrets:
          db: {external: true}
          api: {external: true, name: prod_api}
          cert: {external: true}
    """)
    refs = [(s.source, s.target) for s in spec.services["web"].secrets]
    assert refs == [
        ("db", "/run/secrets/db"),
        ("prod_api", "/run/secrets/api_key"),
        ("cert", "/etc/ssl/cert.pem"),
    ]
    assert spec.secrets == ["cert", "db", "prod_api"]


def test_healthcheck_forms() -> None:
    full = one("""
        healthcheck:
          test: ["CMD", "wget", "-q", "localhost"]
          interval: 1m30s
          timeout: 500ms
          retries: 5
          start_period: 1h
    """).healthcheck
    assert full is not None
    assert full.test == ["CMD", "wget", "-q", "localhost"]
    assert (full.interval_s, full.timeout_s, full.retries, full.start_period_s) == (90.0, 0.5, 5, 3600.0)
    shell = one("healthcheck: {test: curl -f localhost}").healthcheck
    assert shell is not None and shell.test == ["CMD-SHELL", "curl -f localhost"]
    assert shell.interval_s == 30.0 and shell.retries == 3
    assert one("healthcheck: {test: [NONE]}").healthcheck is None
    assert one("healthcheck: {disable: true}").healthcheck is None
    assert one("healthcheck: {test: [CMD-SHELL, 'true'], disable: true}").healthcheck is None


def test_plain_settings() -> None:
    web = one("""
        hostname: box
        working_dir: /srv
        user: 1000
        stop_grace_period: 1m
        labels: [a=1, b=2]
    """)
    assert (web.hostname, web.working_dir, web.user, web.stop_grace_period_s) == ("box", "/srv", "1000", 60.0)
    assert web.labels == {"a": "1", "b": "2"}


def test_deploy_section() -> None:
    web = one("""
        labels: {from: service}
        deploy:
          mode: replicated
          replicas: 4
          labels: {tier: front}
          resources:
            limits: {cpus: "0.5", memory: 512m, pids: 100}
            reservations: {cpus: 0.25, memory: 1g}
          placement:
            constraints: ["node.role != manager", node.labels.zone==eu, node.hostname!=old]
            preferences: [{spread: node.labels.zone}, {spread: node.labels.rack}]
          update_config: {parallelism: 2, delay: 10s, failure_action: rollback, monitor: 30s,
                          max_failure_ratio: 0.25, order: start-first}
          rollback_config: {parallelism: 0, order: stop-first, failure_action: continue}
          restart_policy: {condition: on-failure, delay: 2s, max_attempts: 3, window: 1m}
    """)
    assert web.replicas == 4 and web.labels == {"from": "service", "tier": "front"}
    r = web.resources
    assert (r.limit_cpus, r.limit_memory_bytes, r.limit_pids) == (0.5, 512 << 20, 100)
    assert (r.reserve_cpus, r.reserve_memory_bytes) == (0.25, 1 << 30)
    assert web.constraints == ["node.role!=server", "node.labels.zone==eu", "node.hostname!=old"]
    assert web.preferences == ["node.labels.zone", "node.labels.rack"]
    u = web.update_config
    assert (u.parallelism, u.delay_s, u.failure_action, u.monitor_s, u.max_failure_ratio, u.order) == (
        2, 10.0, "rollback", 30.0, 0.25, "start-first"
    )  # fmt: skip
    assert (web.rollback_config.parallelism, web.rollback_config.failure_action) == (0, "continue")
    rp = web.restart_policy
    assert (rp.condition, rp.delay_s, rp.max_attempts, rp.window_s) == ("on-failure", 2.0, 3, 60.0)


def test_global_mode() -> None:
    web = one("deploy: {mode: global}")
    assert web.mode == "global"


def test_x_shoal_ingress_and_extensions_ignored() -> None:
    spec = parse("""
        x-defaults: &defaults
          image: app:1
        services:
          web:
            <<: *defaults
            x-note: anything
            x-shoal:
              ingress: {host: app.example.com, path: /api, port: 8080}
          plain: {image: b}
    """)
    ingress = spec.services["web"].ingress
    assert ingress is not None and (ingress.host, ingress.path, ingress.port) == (
        "app.example.com",
        "/api",
        8080,
    )
    assert spec.services["web"].image == "app:1"
    assert spec.services["plain"].ingress is None


def test_x_shoal_rebalance_auto_or_manual() -> None:
    assert one("x-shoal: {rebalance: auto}\n").rebalance == "auto"
    assert one("").rebalance == "manual"
    with pytest.raises(ComposeError, match=r"x-shoal\.rebalance"):
        one("x-shoal: {rebalance: sometimes}\n")


def test_several_services_and_names() -> None:
    spec = parse("services:\n  web: {image: a}\n  db-1: {image: b}\n")
    assert sorted(spec.services) == ["db-1", "web"]


@pytest.mark.parametrize("order", ["start-first", "stop-first"])
def test_update_order_values(order: str) -> None:
    assert one(f"deploy: {{update_config: {{order: {order}}}}}").update_config.order == order


def test_empty_sections_are_absent() -> None:
    web = one("deploy:\nenvironment:\nhealthcheck:\n")
    assert web.replicas == 1 and web.environment == {} and web.healthcheck is None
    assert parse("services:\n  web:\n    image: a\nvolumes:\nsecrets:\n").volumes == []

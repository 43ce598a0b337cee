"""A ServiceSpec → ContainerSpec; fingerprints and human diffs between revisions."""

from __future__ import annotations

import textwrap

from shoal.model.compose import ServiceSpec, parse_compose
from shoal.model.container import pulls_always
from shoal.model.specs import diff_specs, to_container_spec

FULL = """
services:
  web:
    image: app:1
    command: [serve, --port, "80"]
    entrypoint: /init
    environment: {A: "1"}
    hostname: box
    working_dir: /srv
    user: app
    ports: ["8080:80", "81", "127.0.0.1:53:53/udp"]
    volumes:
      - data:/data:ro
      - /etc/ssl:/ssl
      - {type: tmpfs, target: /tmp, tmpfs: {size: 16m}}
    secrets: [db]
    healthcheck: {test: [CMD, check], interval: 2s, timeout: 1s, retries: 2, start_period: 3s}
    stop_grace_period: 20s
    labels: {a: b}
    deploy:
      resources:
        limits: {cpus: 1.5, memory: 256m, pids: 64}
        reservations: {cpus: 0.5, memory: 128m}
      restart_policy: {condition: on-failure, max_attempts: 4, delay: 1s, window: 30s}
volumes: {data: }
secrets: {db: {external: true, name: real_db}}
"""


def service(text: str = FULL) -> ServiceSpec:
    return parse_compose(textwrap.dedent(text), "p").services["web"]


def test_container_spec_carries_everything() -> None:
    c = to_container_spec(service(), replica=2, generation=5)
    assert (c.id, c.service, c.replica, c.generation, c.image) == ("web-2-5", "web", 2, 5, "app:1")
    assert c.command == ["serve", "--port", "80"] and c.entrypoint == ["/init"]
    assert (c.env, c.hostname, c.working_dir, c.user) == ({"A": "1"}, "box", "/srv", "app")
    assert [(p.host_ip, p.host_port, p.container_port, p.protocol) for p in c.ports] == [
        ("", 8080, 80, "tcp"),
        ("127.0.0.1", 53, 53, "udp"),
    ]
    mounts = [(m.kind, m.source, m.target, m.read_only, m.size_bytes) for m in c.mounts]
    assert mounts == [
        ("volume", "data", "/data", True, None),
        ("bind", "/etc/ssl", "/ssl", False, None),
        ("tmpfs", "", "/tmp", False, 16 << 20),
        ("secret", "real_db", "/run/secrets/db", True, None),
    ]
    assert c.healthcheck is not None
    assert (c.healthcheck.test, c.healthcheck.interval_s, c.healthcheck.retries) == (["CMD", "check"], 2.0, 2)
    r = c.resources
    assert (r.cpus, r.memory_bytes, r.pids, r.reserve_cpus, r.reserve_memory_bytes) == (
        1.5, 256 << 20, 64, 0.5, 128 << 20
    )  # fmt: skip
    assert (c.restart.name, c.restart.max_retries, c.restart.delay_s, c.restart.window_s) == (
        "on-failure", 4, 1.0, 30.0
    )  # fmt: skip
    assert c.stop_grace_s == 20.0 and c.labels == {"a": "b"}


def test_restart_conditions_map_to_runtime_names() -> None:
    base = "services:\n  web:\n    image: a\n"
    names = {}
    for condition in ("none", "on-failure", "any"):
        spec = service(base + f"    deploy: {{restart_policy: {{condition: {condition}}}}}\n")
        names[condition] = to_container_spec(spec, 1, 1).restart.name
    assert names == {"none": "no", "on-failure": "on-failure", "any": "always"}
    default = to_container_spec(service(base), 1, 1).restart
    assert (default.name, default.delay_s, default.window_s) == ("always", 0.5, 10.0)


def test_diff_specs_lists_what_changed() -> None:
    a = service("services:\n  web:\n    image: app:1\n    deploy: {replicas: 2}\n")
    b = service(
        "services:\n  web:\n    image: app:2\n    environment: {A: x}\n"
        "    deploy: {replicas: 3, update_config: {order: start-first}}\n"
    )
    assert diff_specs(a, b) == [
        "environment.A: (none) → x",
        "image: app:1 → app:2",
        "replicas: 2 → 3",
        "update_config.order: stop-first → start-first",
    ]
    assert diff_specs(a, a) == []


def test_diff_specs_can_hide_environment_values() -> None:
    a = service("services:\n  web:\n    image: app:1\n    environment: {PW: old, KEEP: k}\n")
    b = service("services:\n  web:\n    image: app:1\n    environment: {PW: new, ADDED: y}\n")
    assert diff_specs(a, b, hide_env=True) == [
        "environment.ADDED: (none) → (redacted)",
        "environment.KEEP: (redacted) → (none)",
        "environment.PW: (redacted) → (redacted)",
    ]


def test_diff_specs_shortens_long_values() -> None:
    a = service("services:\n  web:\n    image: a\n")
    b = service("services:\n  web:\n    image: a\n    command: " + "x" * 100 + "\n")
    (line,) = diff_specs(a, b)
    assert line.startswith("command: (none) → [") and line.endswith("…") and len(line) < 90


def test_pull_policy_from_compose_and_the_default_rule() -> None:
    base = "services:\n  web:\n    image: app:1\n"
    assert to_container_spec(service(base), 1, 1).pull_policy is None
    spec = to_container_spec(service(base + "    pull_policy: if_not_present\n"), 1, 1)
    assert spec.pull_policy == "missing"
    assert pulls_always("app:1", "always") and not pulls_always("app:latest", "missing")
    assert pulls_always("app", None) and pulls_always("reg:5000/app:latest", None)
    assert not pulls_always("reg:5000/app:1.2", None)
    assert not pulls_always("reg:5000/app@sha256:" + "a" * 64, None)

"""Compose keys through the real agent (child process) into real runc containers.

A service parsed from a Compose file (`parse_compose` -> `to_container_spec`, as the server
stamps it) is run by the agent: its secrets' `mode`/`uid`/`gid` are the files' in the container;
`init: true` runs the agent config's `init_binary` as PID 1; with no `healthcheck:` the image's own
HEALTHCHECK (its config's `Healthcheck`, read by the agent at the start) decides the health.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import shutil
import textwrap

import httpx
import pytest

from shoal.agent import config as cfg
from shoal.model.compose import parse_compose
from shoal.model.container import ContainerSpec
from shoal.model.specs import to_container_spec
from shoal.model.state import SecretValue
from shoal.model.status import ContainerStatus

from .conftest import SECRET, AgentEnv, wait_for
from .test_agent_containers import by_id, running, state

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def _service(compose: str, service: str) -> ContainerSpec:
    deploy = parse_compose(textwrap.dedent(compose), "sha")
    return to_container_spec(deploy.services[service], 1, 1)


def _exec(env: AgentEnv, cid: str, *cmd: str) -> str:
    done = httpx.post(
        f"http://127.0.0.1:{env.config.agent_port}/agent/v1/containers/{cid}/exec",
        json={"cmd": list(cmd)},
        headers={"Authorization": f"Bearer {SECRET}"},
        timeout=10,
    )
    body = done.json()
    assert body["exit_code"] == 0, body
    return str(body["output"])


def test_secret_mode_and_owner_reach_the_file_in_the_container(
    agent_env: AgentEnv, registry: str, test_images: dict[str, str]
) -> None:
    env = agent_env
    c = _service(
        f"""
        services:
          app:
            image: {test_images["sleep"]}
            command: ["sleep", "3600"]
            secrets:
              - source: tok
                mode: 0440
                uid: "1000"
                gid: 1001
              - plain
        secrets:
          tok: {{external: true}}
          plain: {{external: true}}
        """,
        "app",
    )
    values = [
        SecretValue(name=n, value_b64=base64.b64encode(b"v-" + n.encode()).decode()) for n in ("tok", "plain")
    ]
    env.set_state(state(registry, c, secrets=values))
    env.start()
    wait_for(lambda: running(env, c.id), 60, lambda: f"running\n{env.log()}")
    assert _exec(env, c.id, "stat", "-c", "%a %u %g", "/run/secrets/tok").split() == ["440", "1000", "1001"]
    assert _exec(env, c.id, "stat", "-c", "%a %u %g", "/run/secrets/plain").split() == ["400", "0", "0"]
    assert _exec(env, c.id, "cat", "/run/secrets/tok") == "v-tok"


def test_init_runs_the_agents_init_binary_as_pid_1(
    agent_env: AgentEnv, registry: str, test_images: dict[str, str]
) -> None:
    env = agent_env
    tini = shutil.which("tini-static")
    if tini is None:
        pytest.skip("tini-static is not installed")
    node_init = env.base / "node-init"  # not the default path: the agent config must carry it
    shutil.copy(tini, node_init)
    env.config = dataclasses.replace(env.config, init_binary=str(node_init))
    cfg.save(env.config, env.node)
    compose = f"""
        services:
          app:
            image: {test_images["sleep"]}
            command: ["sleep", "3600"]
            init: true
        """
    c = _service(compose, "app")
    env.set_state(state(registry, c))
    env.start()
    wait_for(lambda: running(env, c.id), 60, lambda: f"running\n{env.log()}")
    assert _exec(env, c.id, "cat", "/proc/1/cmdline").split("\0")[:2] == ["/sbin/docker-init", "--"]
    assert "sleep" in _exec(env, c.id, "ps", "-o", "pid,args")
    node_init.unlink()  # a node without its init binary refuses the next one, naming the setting
    c2 = c.model_copy(update={"id": "app-2-1", "replica": 2})
    env.set_state(state(registry, c, c2))
    wait_for(lambda: (s := by_id(env, c2.id)) is not None and s.state == "failed", 60, "c2 failed")
    status = by_id(env, c2.id)
    assert status is not None and "init_binary" in status.message


def test_the_images_own_healthcheck_runs_when_the_file_has_none(
    agent_env: AgentEnv, registry: str, test_images: dict[str, str]
) -> None:
    """No `healthcheck:` in the file: the agent reads the image config's Healthcheck at the
    start (a passing one -> healthy, a failing one -> unhealthy); `disable: true` runs none."""
    env = agent_env
    compose = f"""
        services:
          good: {{image: {test_images["healthy"]}}}
          bad: {{image: {test_images["sick"]}}}
          off:
            image: {test_images["sick"]}
            healthcheck: {{disable: true}}
        """
    good, bad, off = (_service(compose, name) for name in ("good", "bad", "off"))
    assert good.healthcheck is None and good.image_healthcheck
    assert off.healthcheck is None and not off.image_healthcheck
    env.set_state(state(registry, good, bad, off))
    env.start()
    wait_for(lambda: (s := by_id(env, good.id)) is not None and s.health == "healthy", 60, env.log)
    seen: list[ContainerStatus] = []  # the unhealthy report itself: the agent then restarts it

    def unhealthy() -> bool:
        found = by_id(env, bad.id)
        seen[:] = [found] if found is not None and found.health == "unhealthy" else []
        return bool(seen)

    wait_for(unhealthy, 60, env.log)
    assert seen[0].message.startswith("health check failed 2 times"), seen[0]
    wait_for(lambda: running(env, off.id), 60, env.log)
    idle = by_id(env, off.id)
    assert idle is not None and idle.health == "none", idle

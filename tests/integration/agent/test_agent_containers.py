"""A real agent (child process) with the real runtime, image store and registry (root).

Desired state → containers running; removal → stopped and deleted; kill -9 of the agent →
the restarted agent adopts (same pids, no restarts); a hostile image → failed with its
message; a health check turning unhealthy → reported and restarted per policy; the agent's
logs/exec endpoints behind its secret.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from shoal.agent.images import ImageStore, PulledImage
from shoal.model.container import ContainerSpec, HealthCheck, Mount, RestartPolicy, Security
from shoal.model.state import DnsRecord, NodeState, SecretValue
from shoal.model.status import ContainerStatus
from tests.support.registry_fixtures import BOMB

from .conftest import SECRET, AgentEnv, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def state(registry: str, *containers: ContainerSpec, **kw: object) -> NodeState:
    return NodeState(
        node="sha-n1",
        subnet="10.210.9.0/24",
        containers=list(containers),
        insecure_registries=[registry],
        **kw,
    )


def spec(cid: str, image: str, **kw: object) -> ContainerSpec:
    return ContainerSpec(id=cid, service=cid.rsplit("-", 2)[0], replica=1, generation=1, image=image, **kw)


def by_id(env: AgentEnv, cid: str) -> ContainerStatus | None:
    last = env.last_status()
    return next((c for c in last.containers if c.id == cid), None) if last else None


def running(env: AgentEnv, *ids: str) -> bool:
    found = [by_id(env, cid) for cid in ids]
    return all(c is not None and c.state == "running" and c.pid for c in found)


def test_runs_removes_and_adopts_after_kill9(
    agent_env: AgentEnv, registry: str, test_images: dict[str, str]
) -> None:
    env = agent_env
    a, b = spec("sha-a-1-1", test_images["sleep"]), spec("sha-b-1-1", test_images["sleep"])
    env.set_state(state(registry, a, b))
    first = env.start()
    wait_for(lambda: running(env, a.id, b.id), 60, lambda: f"both running\n{env.log()}")
    pids = {cid: by_id(env, cid).pid for cid in (a.id, b.id)}  # type: ignore[union-attr]

    env.kill9(first)
    assert {c.id: c.state for c in env.runtime().list()} == {a.id: "running", b.id: "running"}  # outlive it
    (env.client_dir / "desired.json").unlink()  # and the server is down too
    env.start()
    count = len(env.statuses())
    wait_for(
        lambda: len(env.statuses()) > count + 2 and running(env, a.id, b.id),
        30,
        "adopted from the saved state",
    )
    for cid in (a.id, b.id):
        again = by_id(env, cid)
        assert again is not None
        assert (again.pid, again.restarts) == (pids[cid], 0)
    assert "server unreachable" in env.log()

    env.set_state(state(registry, a))  # the server is back, with a new version: b goes
    wait_for(lambda: not (env.config.bundles_dir / b.id).exists(), 30, "b deleted")
    assert b.id not in {c.id for c in env.runtime().list()}
    assert not Path(f"/proc/{pids[b.id]}").exists()  # its process is gone
    wait_for(lambda: [c.id for c in env.last_status().containers] == [a.id], 10, "b not reported")  # type: ignore[union-attr]
    store = ImageStore(env.config.images_dir)
    assert len(store.records()) == 1  # still used by a, which this agent adopted
    assert env.runtime().get(a.id).pid == pids[a.id]

    env.set_state(state(registry))
    wait_for(lambda: env.runtime().list() == [], 30, "a removed")
    wait_for(lambda: store.records() == [], 10, "unused image collected")


def test_endpoints_logs_and_exec(agent_env: AgentEnv, registry: str, test_images: dict[str, str]) -> None:
    env = agent_env
    cmd = ["sh", "-c", "echo hello-from-sha; exec sleep 3600"]
    value = base64.b64encode(b"s3cret-value").decode()
    c = spec(
        "sha-logs-1-1",
        test_images["sleep"],
        command=cmd,
        mounts=[Mount(kind="secret", source="tok", target="/run/secrets/tok")],
    )
    env.set_state(state(registry, c, secrets=[SecretValue(name="tok", value_b64=value)]))
    env.start()
    wait_for(lambda: running(env, c.id), 60, lambda: f"running\n{env.log()}")
    url = f"http://127.0.0.1:{env.config.agent_port}"
    auth = {"Authorization": f"Bearer {SECRET}"}
    assert httpx.get(f"{url}/agent/v1/containers/{c.id}/logs", timeout=5).status_code == 401
    logs = wait_for(
        lambda: (
            "hello-from-sha"
            in httpx.get(f"{url}/agent/v1/containers/{c.id}/logs?tail=10", headers=auth, timeout=5).text
        ),
        10,
        "logs",
    )
    assert logs
    follow = f"{url}/agent/v1/containers/{c.id}/logs?follow=1&tail=5"
    with httpx.stream("GET", follow, headers=auth, timeout=5) as streamed:
        first = next(streamed.iter_lines())
    assert first.endswith("stdout hello-from-sha")
    done = httpx.post(
        f"{url}/agent/v1/containers/{c.id}/exec",
        json={"cmd": ["cat", "/run/secrets/tok"]},
        headers=auth,
        timeout=10,
    )
    assert done.json() == {"exit_code": 0, "output": "s3cret-value"}
    assert value not in env.config.state_file.read_text()  # secret values stay on the tmpfs
    secret_file = env.config.secrets_dir / c.id / "tok"
    assert (secret_file.stat().st_mode & 0o777) == 0o400
    metrics = httpx.get(f"{url}/metrics", headers=auth, timeout=5).text
    assert 'shoal_agent_containers{state="running"} 1.0' in metrics


def test_hostile_image_is_reported_failed(
    agent_env: AgentEnv, registry: str, test_images: dict[str, str]
) -> None:
    env = agent_env
    evil = spec("sha-evil-1-1", test_images["evil-dotdot"])
    env.set_state(state(registry, evil))
    env.start()
    failed = wait_for(
        lambda: (c := by_id(env, evil.id)) is not None and c.state == "failed" and c,
        60,
        lambda: f"failed\n{env.log()}",
    )
    assert isinstance(failed, ContainerStatus)
    assert "sha256:" in failed.message
    assert "\n" not in failed.message
    assert env.runtime().list() == []


def test_an_unpack_bomb_fails_its_replica_and_the_others_run(
    agent_env: AgentEnv, registry: str, test_images: dict[str, str]
) -> None:
    env = agent_env
    bomb, fine = spec("sha-bomb-1-1", test_images[BOMB]), spec("sha-fine-1-1", test_images["sleep"])
    env.set_state(state(registry, bomb, fine))
    env.start()
    failed = wait_for(
        lambda: (c := by_id(env, bomb.id)) is not None and c.state == "failed" and c,
        60,
        lambda: f"failed\n{env.log()}",
    )
    assert isinstance(failed, ContainerStatus)
    assert "refused: unpacks to more than 20 GiB (agent config unpack_max_bytes)" in failed.message
    assert "\n" not in failed.message
    wait_for(lambda: running(env, fine.id), 60, lambda: f"fine running\n{env.log()}")
    assert [c.id for c in env.runtime().list()] == [fine.id]


def test_unhealthy_is_reported_and_restarted(
    agent_env: AgentEnv, registry: str, test_images: dict[str, str]
) -> None:
    env = agent_env
    script = "touch /tmp/ok; sleep 4; rm /tmp/ok; exec sleep 3600"
    check = HealthCheck(test=["CMD-SHELL", "test -f /tmp/ok"], interval_s=0.3, timeout_s=2, retries=2)
    c = spec(
        "sha-hc-1-1",
        test_images["sleep"],
        command=["sh", "-c", script],
        healthcheck=check,
        restart=RestartPolicy(name="always"),
    )
    env.set_state(state(registry, c))
    env.start()
    wait_for(
        lambda: (s := by_id(env, c.id)) is not None and s.health == "healthy",
        60,
        lambda: f"healthy\n{env.log()}",
    )
    first_pid = by_id(env, c.id).pid  # type: ignore[union-attr]
    wait_for(
        lambda: any(x.health == "unhealthy" and x.id == c.id for s in env.statuses() for x in s.containers),
        30,
        "unhealthy",
    )
    sick = next(x for s in env.statuses() for x in s.containers if x.health == "unhealthy")
    assert sick.message.startswith("health check failed 2 times")
    wait_for(
        lambda: (s := by_id(env, c.id)) is not None and s.restarts >= 1 and s.state == "running",
        30,
        "restarted",
    )
    assert by_id(env, c.id).pid != first_pid  # type: ignore[union-attr]


def test_managed_network_gives_containers_addresses(
    net_agent_env: AgentEnv, registry: str, test_images: dict[str, str]
) -> None:
    """In a throwaway netns: bridge, WireGuard link, nft table, DNS; containers get veths and names."""
    env = net_agent_env
    image = _prepull(env, registry, test_images["sleep"])  # the registry is on the host's loopback
    a = spec("sha-na-1-1", image.ref, image_digest=image.digest, ip="10.210.9.10", stop_grace_s=4)
    b = spec("sha-nb-1-1", image.ref, image_digest=image.digest, ip="10.210.9.11")
    dns = [DnsRecord(name="sha-web.shoal.internal", addresses=["10.210.9.11"])]
    env.set_state(state(registry, a, b, dns=dns))
    env.start()
    wait_for(lambda: running(env, a.id, b.id), 60, lambda: f"both running\n{env.log()}")
    assert [by_id(env, cid).ip for cid in (a.id, b.id)] == ["10.210.9.10", "10.210.9.11"]  # type: ignore[union-attr]
    rt = env.runtime()
    pinged = rt.exec(a.id, ["ping", "-c", "1", "-W", "2", "sha-web.shoal.internal"], 10)
    assert pinged.exit_code == 0, pinged.output
    assert "10.210.9.11" in pinged.output
    links = subprocess.run(
        ["ip", "-n", env.netns, "-o", "link"], capture_output=True, text=True, check=True
    ).stdout
    assert env.config.bridge in links and env.config.wg_interface in links
    nft = ["nsenter", f"--net=/run/netns/{env.netns}", "nft", "list", "tables"]
    assert env.config.nft_table in subprocess.run(nft, capture_output=True, text=True, check=True).stdout
    assert "reconcile step" not in env.log()

    # the server gives a's address to a new replica while a is still in its stop grace: c waits
    c = spec("sha-nc-1-1", image.ref, image_digest=image.digest, ip="10.210.9.10")
    env.set_state(state(registry, b, c, dns=dns))
    wait_for(lambda: running(env, c.id), 30, lambda: f"c running on a's address\n{env.log()}")
    assert by_id(env, c.id).ip == "10.210.9.10"  # type: ignore[union-attr]
    seen = {x.state for st in env.statuses() for x in st.containers if x.id == c.id}
    assert "failed" not in seen, env.log()
    assert "is already used by sha-na-1-1; the start waits" in env.log()


def _prepull(env: AgentEnv, registry: str, ref: str) -> PulledImage:
    """Pull into the agent's store from here, under the pinned name the agent will ask for."""
    store = ImageStore(env.config.images_dir, None, [registry])
    digest = store.pull(ref).digest
    pinned = f"{ref.rsplit(':', 1)[0]}@{digest}"
    store.pull(pinned)
    return PulledImage(ref, digest, {}, [])


def test_a_slow_stop_does_not_hold_up_a_start(
    agent_env: AgentEnv, registry: str, test_images: dict[str, str]
) -> None:
    """The old replica's grace runs in the background: its replacement starts at once (failover)."""
    env = agent_env
    old = spec("sha-old-1-1", test_images["sleep"], stop_grace_s=8, ip="10.210.9.20")  # ignores TERM
    new = spec("sha-new-1-1", test_images["sleep"], ip="10.210.9.21")
    env.set_state(state(registry, old))
    env.start()
    wait_for(lambda: running(env, old.id), 60, lambda: f"old running\n{env.log()}")

    env.set_state(state(registry, new))
    wait_for(lambda: running(env, new.id), 5, lambda: f"new running within 5s\n{env.log()}")
    assert (env.config.bundles_dir / old.id).exists(), "the old one is still in its grace period"
    # reported as stopping, with the address it still holds (the server gives it to no one)
    wait_for(lambda: by_id(env, old.id) is not None, 5, "old reported while it stops")
    left = by_id(env, old.id)
    assert left is not None and (left.message, left.ip) == ("stopping", "10.210.9.20"), left
    assert (env.config.bundles_dir / old.id).exists(), "still in its grace when new ran and was reported"
    wait_for(lambda: not (env.config.bundles_dir / old.id).exists(), 20, "old deleted after its grace")
    # the pass the stop's end wakes writes the next report; it lists the old one no more
    wait_for(lambda: by_id(env, old.id) is None, 5, "old gone from the report")


def test_a_host_network_container_is_on_the_nodes_network_with_no_address(
    net_agent_env: AgentEnv, registry: str, test_images: dict[str, str]
) -> None:
    """`network_mode: host`: no netns of its own, no veth, no address; the node's names."""
    env = net_agent_env
    image = _prepull(env, registry, test_images["sleep"])
    host = spec("sha-hn-1-1", image.ref, image_digest=image.digest, security=Security(network_mode="host"))
    env.set_state(state(registry, host))
    env.start()
    wait_for(lambda: running(env, host.id), 60, lambda: f"running\n{env.log()}")
    assert by_id(env, host.id).ip is None  # type: ignore[union-attr]
    pid = by_id(env, host.id).pid  # type: ignore[union-attr]
    assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(f"/run/netns/{env.netns}").st_ino
    resolv = env.runtime().exec(host.id, ["cat", "/etc/resolv.conf"], 10)
    assert resolv.output == Path("/etc/resolv.conf").read_text()
    veths = subprocess.run(["ip", "-n", env.netns, "-o", "link"], capture_output=True, text=True, check=True)
    assert "veth" not in veths.stdout and not list(env.config.netns_dir.glob("*hn*"))


def test_a_reboot_brings_back_what_its_policy_restarts(
    net_agent_env: AgentEnv, registry: str, test_images: dict[str, str]
) -> None:
    """As after a reboot: the agent, conmon and the container's process gone without an exit
    code, runc's state, the root mount and the network namespace gone too. The agent's start
    brings back the `always` container afresh (a new netns, the same address)."""
    env = net_agent_env
    image = _prepull(env, registry, test_images["sleep"])
    always = RestartPolicy(name="always", delay_s=0.1)
    a = spec(
        "sha-rb-1-1",
        image.ref,
        image_digest=image.digest,
        ip="10.210.9.30",
        restart=always,
        mounts=[Mount(kind="secret", source="tok", target="/run/secrets/tok")],
    )
    value = base64.b64encode(b"s3cret").decode()
    env.set_state(state(registry, a, secrets=[SecretValue(name="tok", value_b64=value)]))
    agent = env.start()
    wait_for(lambda: running(env, a.id), 60, lambda: f"running\n{env.log()}")
    pid = by_id(env, a.id).pid  # type: ignore[union-attr]
    env.kill9(agent)
    _reboot(env, a.id, pid)  # type: ignore[arg-type]

    env.start()
    wait_for(
        lambda: running(env, a.id) and by_id(env, a.id).pid != pid,  # type: ignore[union-attr]
        30,
        lambda: f"brought back after the reboot\n{env.log()}",
    )
    assert by_id(env, a.id).ip == "10.210.9.30"  # type: ignore[union-attr]
    assert env.runtime().exec(a.id, ["ip", "-o", "addr"], 10).output.count("10.210.9.30") == 1
    assert env.runtime().exec(a.id, ["cat", "/run/secrets/tok"], 10).output == "s3cret"
    assert "runc create failed" not in env.log(), "no in-place restart into the namespace a reboot took"


def test_at_boot_the_agent_brings_back_an_always_container_its_stop_left(
    agent_env: AgentEnv, registry: str, test_images: dict[str, str]
) -> None:
    """The agent died between a stop and the delete (a health restart): at its start, `always`
    brings the still-desired container back (the supervisor's boot tick)."""
    env = agent_env
    a = spec("sha-boot-1-1", test_images["sleep"], restart=RestartPolicy(name="always", delay_s=0.1))
    env.set_state(state(registry, a))
    agent = env.start()
    wait_for(lambda: running(env, a.id), 60, lambda: f"running\n{env.log()}")
    env.kill9(agent)
    env.runtime().stop(a.id, grace_s=0.5)  # as the agent's own stop does: the policy leaves it
    assert env.runtime().get(a.id).state == "stopped"
    env.start()
    wait_for(lambda: env.runtime().get(a.id).state == "running", 30, lambda: f"back\n{env.log()}")


def _reboot(env: AgentEnv, container_id: str, pid: int) -> None:
    """What a reboot leaves of a container this test's agent started (processes ended by pid)."""
    from shoal.agent.assemble import net_config
    from shoal.agent.runtime import overlay
    from shoal.agent.sys.netlink import remove_netns

    rt = env.runtime()
    conmon = int((rt.bundle(container_id) / "conmon.pid").read_text())
    os.kill(conmon, 9)  # first: a monitor that saw the end would write an exit code
    wait_for(lambda: not Path(f"/proc/{conmon}").exists(), 10, "conmon gone")
    os.kill(pid, 9)
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), 10, "the container's process gone")
    rt.runc.delete(container_id, force=True)
    overlay.unmount_root(rt.bundle(container_id))
    shutil.rmtree(env.config.secrets_dir / container_id)  # a tmpfs: empty after a reboot
    net = net_config(env.config)
    remove_netns(net.netns_path(f"{net.netns_prefix}-{container_id}"))
    assert rt.get(container_id).lost

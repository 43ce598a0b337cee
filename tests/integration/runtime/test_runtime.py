"""agent.runtime against the real runc, conmon and overlay mounts (root)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shoal.agent.runtime import Runtime
from shoal.errors import ConfigError
from shoal.model.compose import parse_compose
from shoal.model.container import ContainerSpec, Mount, Resources, RestartPolicy
from shoal.model.specs import to_container_spec

from .conftest import CONFIG, cleanup, runtime_config

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def spec(cid: str, cmd: list[str] | None, **kw: Any) -> ContainerSpec:
    return ContainerSpec(id=cid, image="local/busybox", command=cmd, **kw)


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def exited(rt: Runtime, cid: str) -> bool:
    return rt.get(cid).exit_code is not None


def test_run_and_read_logs(runtime: Runtime, rootfs: Path) -> None:
    pid = runtime.create_and_start(spec("shc-logs", None), CONFIG, [rootfs])
    assert pid > 0
    wait_for(lambda: exited(runtime, "shc-logs"))
    lines = runtime.logs("shc-logs")
    assert [(ln.stream, ln.text) for ln in lines] == [("stdout", "hello")]
    assert lines[0].time == pytest.approx(time.time(), abs=30)
    c = runtime.get("shc-logs")
    assert (c.state, c.exit_code) == ("exited", 0)


def test_env_user_workdir_hostname_and_mounts(runtime: Runtime, rootfs: Path, workdir: Path) -> None:
    host_file = workdir / "resolv.conf"
    host_file.write_text("nameserver 127.0.0.53\n")
    secrets = workdir / "secrets"
    secrets.mkdir()
    (secrets / "token").write_text("s3cret")
    script = "id; pwd; env | sort; hostname; cat /etc/resolv.conf /run/secrets/token; echo; "
    script += "touch /run/secrets/token"
    s = spec(
        "shc-env", ["sh", "-c", script], user="app", working_dir="/home/app", env={"FROM_SPEC": "2"},
        hostname="shc-host",
        mounts=[Mount(kind="secret", source="token", target="/run/secrets/token"),
                Mount(kind="tmpfs", target="/scratch", size_bytes=1 << 20)],
    )  # fmt: skip
    runtime.create_and_start(s, CONFIG, [rootfs], files={"/etc/resolv.conf": host_file}, secrets_dir=secrets)
    wait_for(lambda: exited(runtime, "shc-env"))
    out = [ln.text for ln in runtime.logs("shc-env")]
    assert out[0].startswith("uid=1000(app) gid=1000(app)")
    assert "/home/app" in out and "FROM_IMAGE=1" in out and "FROM_SPEC=2" in out and "HOME=/home/app" in out
    assert "shc-host" in out and "nameserver 127.0.0.53" in out and "s3cret" in out
    assert any("Read-only file system" in ln for ln in out)


def cgroup_value(controller: str, parent: str, cid: str, name: str) -> str:
    return Path(f"/sys/fs/cgroup/{controller}{parent}/{cid}/{name}").read_text().strip()


def test_limits_visible_in_cgroup(runtime: Runtime, rootfs: Path) -> None:
    res = Resources(memory_bytes=32 << 20, pids=16, cpus=0.5)
    runtime.create_and_start(spec("shc-lim", ["sleep", "30"], resources=res), CONFIG, [rootfs])
    assert runtime.get("shc-lim").state == "running"  # started through the exec FIFO
    assert runtime.runc.state("shc-lim").status == "running"
    parent = runtime.config.cgroup_parent
    assert cgroup_value("memory", parent, "shc-lim", "memory.limit_in_bytes") == str(32 << 20)
    assert cgroup_value("pids", parent, "shc-lim", "pids.max") == "16"
    assert cgroup_value("cpu", parent, "shc-lim", "cpu.cfs_quota_us") == "50000"
    result = runtime.exec("shc-lim", ["sh", "-c", "echo from-exec; exit 4"], timeout=10)
    assert (result.exit_code, result.output.strip()) == (4, "from-exec")


def test_stop_with_grace(runtime: Runtime, rootfs: Path) -> None:
    polite = "trap 'exit 0' TERM; while true; do sleep 0.1; done"
    runtime.create_and_start(spec("shc-polite", ["sh", "-c", polite]), CONFIG, [rootfs])
    runtime.create_and_start(spec("shc-stubborn", ["sh", "-c", "trap '' TERM; sleep 60"]), CONFIG, [rootfs])
    time.sleep(0.3)  # let the shells install their traps
    t = time.monotonic()
    runtime.stop("shc-polite", grace_s=5)
    assert time.monotonic() - t < 2
    t = time.monotonic()
    runtime.stop("shc-stubborn", grace_s=1)
    assert 1 <= time.monotonic() - t < 4
    wait_for(lambda: exited(runtime, "shc-stubborn") and exited(runtime, "shc-polite"))
    assert runtime.get("shc-polite").exit_code == 0
    stubborn = runtime.get("shc-stubborn")
    assert (stubborn.state, stubborn.exit_code) == ("stopped", 137)
    assert runtime.supervise() == []  # stopped by a person: not restarted
    later = time.time() + 60  # past the back-off
    assert [a.action for a in runtime.supervise(later, boot=True)] == ["restart", "restart"]  # always


def test_exit_code_recorded(runtime: Runtime, rootfs: Path) -> None:
    runtime.create_and_start(
        spec("shc-exit3", ["sh", "-c", "exit 3"], restart=RestartPolicy(name="no")), CONFIG, [rootfs]
    )
    wait_for(lambda: exited(runtime, "shc-exit3"))
    c = runtime.get("shc-exit3")
    assert (c.state, c.exit_code, c.pid) == ("exited", 3, None)
    assert c.started_at is not None and c.finished_at is not None and c.finished_at >= c.started_at
    actions = runtime.supervise()
    assert [(a.id, a.action) for a in actions] == [("shc-exit3", "give_up")]


def test_a_container_that_exits_before_start_returns_finishes_after_it_started(
    runtime: Runtime, rootfs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent may be descheduled right after it lets the process go (a loaded machine): the
    container has then ended before the start returns. Its start must still precede its finish
    (the race test_exit_code_recorded once lost by 2 ms)."""
    start_fast = runtime.runc.start_fast

    def start_then_stall(container_id: str) -> None:
        start_fast(container_id)
        wait_for(runtime.exit_file(container_id).exists)
        time.sleep(0.01)  # more than a clock tick: a stamp taken now is after the exit

    monkeypatch.setattr(runtime.runc, "start_fast", start_then_stall)
    runtime.create_and_start(
        spec("shc-quick", ["sh", "-c", "exit 3"], restart=RestartPolicy(name="no")), CONFIG, [rootfs]
    )
    c = runtime.get("shc-quick")
    assert c.exit_code == 3 and c.started_at is not None and c.finished_at is not None
    assert c.finished_at >= c.started_at, f"finished {c.started_at - c.finished_at:.4f} s before it started"


def test_on_failure_restarts_twice_then_gives_up(runtime: Runtime, rootfs: Path) -> None:
    policy = RestartPolicy(name="on-failure", max_retries=2, delay_s=0.05)
    runtime.create_and_start(
        spec("shc-flaky", ["sh", "-c", "echo run; exit 2"], restart=policy), CONFIG, [rootfs]
    )
    done: list[str] = []
    deadline = time.monotonic() + 20
    while "give_up" not in done and time.monotonic() < deadline:
        done += [a.action for a in runtime.supervise()]
        time.sleep(0.05)
    assert done.count("restart") == 2 and done[-1] == "give_up"
    c = runtime.get("shc-flaky")
    assert (c.restarts, c.exit_code, c.gave_up) == (2, 2, True)
    assert [ln.text for ln in runtime.logs("shc-flaky")] == ["run"] * 3


ADOPT = """
import sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from shoal.agent.runtime import Runtime, RuntimeConfig
from shoal.model.container import ContainerSpec
import json
fields = json.loads({cfg!r})
cfg = RuntimeConfig(**{{k: Path(v) if k.endswith("dir") else v for k, v in fields.items()}})
rt = Runtime(cfg)
spec = ContainerSpec(id="shc-adopt", image="x", command=["sleep", "60"])
pid = rt.create_and_start(spec, {{"config": {{}}}}, [Path({root!r})])
print(pid, flush=True)
import time
time.sleep(600)
"""


def test_adoption_after_kill_9(runtime: Runtime, rootfs: Path) -> None:
    cfg = runtime.config
    fields = {k: str(v) for k, v in vars(cfg).items() if k.endswith("dir")}
    fields["cgroup_parent"] = cfg.cgroup_parent
    code = ADOPT.format(repo=str(Path(__file__).parents[3]), cfg=json.dumps(fields), root=str(rootfs))
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        pid = int(child.stdout.readline())
    finally:
        child.kill()  # SIGKILL
        child.wait()
    fresh = Runtime(runtime.config)
    [c] = fresh.list()
    assert (c.id, c.state, c.pid) == ("shc-adopt", "running", pid)
    assert os.path.exists(f"/proc/{pid}")
    fresh.stop("shc-adopt", grace_s=0.5)
    assert fresh.get("shc-adopt").state == "stopped"
    wait_for(lambda: exited(fresh, "shc-adopt"))  # its conmon outlived the killed parent
    assert fresh.get("shc-adopt").exit_code == 137  # sleep as pid 1 ignores TERM: killed


def test_log_rotation_by_size(runtime: Runtime, rootfs: Path) -> None:
    script = "i=0; while [ $i -lt 400 ]; do echo line-$i-padding-padding-padding; i=$((i+1)); "
    script += "sleep 0.005; done; sleep 30"
    runtime.create_and_start(spec("shc-rot", ["sh", "-c", script]), CONFIG, [rootfs])
    rotations = 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        rotations += sum(a.action == "rotate" for a in runtime.supervise())
        if any(ln.text == "line-399-padding-padding-padding" for ln in runtime.logs("shc-rot", tail=1)):
            break
        time.sleep(0.1)
    runtime.supervise()
    log = runtime.log_file("shc-rot")
    wait_for(log.exists)  # a rotation just now: conmon reopens the file when it reads its ctl FIFO
    assert rotations >= 2
    assert log.with_name(log.name + ".1").exists() and log.with_name(log.name + ".2").exists()
    assert not log.with_name(log.name + ".3").exists()
    assert log.stat().st_size <= runtime.config.log_max_bytes
    texts = [ln.text for ln in runtime.logs("shc-rot")]
    assert texts[-1] == "line-399-padding-padding-padding"
    numbers = [int(t.split("-")[1]) for t in texts]
    assert numbers == list(range(numbers[0], 400))  # contiguous: nothing lost across a reopen


def test_delete_unmounts_and_removes(runtime: Runtime, rootfs: Path) -> None:
    runtime.create_and_start(spec("shc-del", ["sleep", "30"]), CONFIG, [rootfs])
    rootfs_mount = runtime.bundle("shc-del") / "rootfs"
    assert os.path.ismount(rootfs_mount)
    runtime.delete("shc-del")
    assert not runtime.bundle("shc-del").exists()
    assert runtime.list() == []
    assert runtime.runc.list() == []


def test_second_agent_does_not_collide(workdir: Path, rootfs: Path, runtime: Runtime) -> None:
    other = Runtime(runtime_config(workdir / "rt2"))
    try:
        runtime.create_and_start(spec("shc-same", ["sleep", "30"]), CONFIG, [rootfs])
        other.create_and_start(spec("shc-same", ["sleep", "30"]), CONFIG, [rootfs])
        assert [c.state for c in runtime.list() + other.list()] == ["running", "running"]
    finally:
        cleanup(other)


def test_layers_stack_in_order_and_writes_stay_in_upper(
    runtime: Runtime, rootfs: Path, workdir: Path
) -> None:
    (rootfs / "etc" / "motd").write_text("base\n")
    top = workdir / "layer-top"
    (top / "etc").mkdir(parents=True)
    (top / "etc" / "motd").write_text("top\n")
    script = "cat /etc/motd; echo written > /new-file; rm /etc/motd; ls /etc"
    runtime.create_and_start(spec("shc-layers", ["sh", "-c", script]), CONFIG, [rootfs, top])
    wait_for(lambda: exited(runtime, "shc-layers"))
    out = [ln.text for ln in runtime.logs("shc-layers")]
    assert out[0] == "top" and "motd" not in out[1:]
    assert (top / "etc" / "motd").read_text() == "top\n" and (rootfs / "etc" / "motd").exists()
    assert not (rootfs / "new-file").exists()
    assert (runtime.bundle("shc-layers") / "upper" / "new-file").read_text() == "written\n"


def test_joins_the_given_network_namespace(runtime: Runtime, rootfs: Path) -> None:
    name = f"shc-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        link = ["ip", "-n", name, "link", "add", "shcv0", "type", "veth", "peer", "name", "shcv1"]
        subprocess.run(link, check=True)
        s = spec("shc-netns", ["ls", "/sys/class/net"])
        runtime.create_and_start(s, CONFIG, [rootfs], f"/run/netns/{name}")
        wait_for(lambda: exited(runtime, "shc-netns"))
        assert sorted(ln.text for ln in runtime.logs("shc-netns")) == ["lo", "shcv0", "shcv1"]
    finally:
        cleanup(runtime)
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.mark.parametrize("bad", ["../escape", "a/b", "", "-x"])
def test_unsafe_ids_are_refused(runtime: Runtime, rootfs: Path, bad: str) -> None:
    with pytest.raises(ConfigError, match="container id"):
        runtime.create_and_start(spec(bad, ["true"]), CONFIG, [rootfs])
    assert list(runtime.config.bundles_dir.iterdir()) == []


def test_container_whose_end_was_not_seen_is_restarted(runtime: Runtime, rootfs: Path) -> None:
    """As after a reboot: the monitor and runc's state are gone; the exit is recorded as 255."""
    policy = RestartPolicy(name="always", delay_s=0.01)
    runtime.create_and_start(spec("shc-lost", ["sleep", "30"], restart=policy), CONFIG, [rootfs])
    conmon_pid = int((runtime.bundle("shc-lost") / "conmon.pid").read_text())
    os.kill(conmon_pid, 9)
    wait_for(lambda: not Path(f"/proc/{conmon_pid}").exists())
    runtime.runc.delete("shc-lost", force=True)
    lost = runtime.get("shc-lost")
    assert (lost.state, lost.exit_code, lost.lost) == ("exited", 255, True)
    # the agent keeps a lost container for itself (it starts it afresh, network and all)
    assert [a.action for a in runtime.supervise(time.time() + 60, keep_lost=True)] == []
    actions: list[str] = []
    wait_for(lambda: "restart" in actions or bool(actions.extend(a.action for a in runtime.supervise())))
    assert actions[-1] == "restart" and set(actions) <= {"wait", "restart"}
    again = runtime.get("shc-lost")
    assert (again.state, again.restarts) == ("running", 1)


def test_follow_logs_until_the_container_ends(runtime: Runtime, rootfs: Path) -> None:
    script = "for i in 1 2 3; do echo tick-$i; sleep 0.2; done"
    runtime.create_and_start(spec("shc-follow", ["sh", "-c", script]), CONFIG, [rootfs])
    got = [ln.render().split(" ", 1)[1] for ln in runtime.follow_logs("shc-follow")]
    assert got == ["stdout tick-1", "stdout tick-2", "stdout tick-3"]


def test_exec_timeout(runtime: Runtime, rootfs: Path) -> None:
    runtime.create_and_start(spec("shc-exec", ["sleep", "30"]), CONFIG, [rootfs])
    t = time.monotonic()
    result = runtime.exec("shc-exec", ["sh", "-c", "echo started; sleep 20"], timeout=0.5)
    assert result.exit_code == 124 and time.monotonic() - t < 3
    ps = runtime.exec("shc-exec", ["ps", "-o", "args"], timeout=5).output
    assert "sleep 20" not in ps and "sleep 30" in ps  # the timed-out process was killed


def test_before_start_runs_after_create_and_before_the_process(runtime: Runtime, rootfs: Path) -> None:
    """The agent plugs a container's veth in while runc creates it: the process must see it."""
    name = f"shc-b-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    calls: list[str] = []

    def plug_in() -> None:
        calls.append(runtime.get("shc-before").state)  # created, not yet running
        time.sleep(0.2)  # a process already running would list its links before this one exists
        link = ["ip", "-n", name, "link", "add", "shcv0", "type", "veth", "peer", "name", "shcv1"]
        subprocess.run(link, check=True)

    try:
        s = spec("shc-before", ["ls", "/sys/class/net"])
        runtime.create_and_start(s, CONFIG, [rootfs], f"/run/netns/{name}", before_start=plug_in)
        wait_for(lambda: exited(runtime, "shc-before"))
        assert calls == ["created"]
        assert sorted(ln.text for ln in runtime.logs("shc-before")) == ["lo", "shcv0", "shcv1"]
    finally:
        cleanup(runtime)
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_before_create_runs_once_the_bundle_is_ready_and_before_runc_knows_it(
    runtime: Runtime, rootfs: Path
) -> None:
    seen: list[object] = []

    def look() -> None:
        bundle = runtime.bundle("shc-bc")
        seen.append((bundle / "config.json").is_file() and (bundle / "rootfs" / "bin").is_dir())
        seen.append("shc-bc" in {c.id for c in runtime.runc.list()})

    try:
        runtime.create_and_start(spec("shc-bc", ["sleep", "30"]), CONFIG, [rootfs], before_create=look)
        assert seen == [True, False]
        assert runtime.get("shc-bc").state == "running"
    finally:
        cleanup(runtime)


def test_a_failing_before_start_leaves_nothing(runtime: Runtime, rootfs: Path) -> None:
    def fail() -> None:
        raise ConfigError("no veth for you")

    with pytest.raises(ConfigError, match="no veth for you"):
        runtime.create_and_start(spec("shc-nostart", ["sleep", "30"]), CONFIG, [rootfs], before_start=fail)
    assert list(runtime.config.bundles_dir.iterdir()) == []
    assert "shc-nostart" not in {c.id for c in runtime.list()}
    assert "shc-nostart" not in {c.id for c in runtime.runc.list()}  # runc's created one is gone


@pytest.mark.parametrize("restart", ["unless-stopped", "always"])
def test_compose_restart_reaches_the_supervisor(runtime: Runtime, rootfs: Path, restart: str) -> None:
    """`restart:` from the Compose file to the runtime: a container that exits (even with 0) is
    restarted. unless-stopped and always behave alike (shoal has no manual stop, as Swarm)."""
    text = "services:\n  job:\n    image: local/busybox\n    command: [sh, -c, 'echo run']\n"
    text += f"    restart: {restart}\n"
    service = parse_compose(text, "rp").services["job"]
    container = to_container_spec(service, 1, 1)
    assert container.restart.name == restart
    container = container.model_copy(update={"id": f"shc-{restart}"})
    container.restart.delay_s = 0.05
    runtime.create_and_start(container, CONFIG, [rootfs])
    done: list[str] = []
    deadline = time.monotonic() + 20
    while done.count("restart") < 2 and time.monotonic() < deadline:
        done += [a.action for a in runtime.supervise()]
        time.sleep(0.05)
    assert done.count("restart") >= 2 and "give_up" not in done
    wait_for(lambda: len(runtime.logs(container.id)) >= 3)
    assert runtime.get(container.id).restarts >= 2


def test_two_projects_volumes_of_one_name_are_apart_on_the_node(runtime: Runtime, rootfs: Path) -> None:
    for project in ("pa", "pb"):
        s = spec(
            f"shc-vol-{project}",
            ["sh", "-c", f"ls /data; echo {project} > /data/{project}"],
            project=project,
            mounts=[Mount(kind="volume", source="data", target="/data")],
        )
        runtime.create_and_start(s, CONFIG, [rootfs])
        wait_for(lambda p=project: exited(runtime, f"shc-vol-{p}"))  # type: ignore[misc]
        assert [ln.text for ln in runtime.logs(f"shc-vol-{project}")] == []  # an empty volume each
    root = runtime.config.volumes_dir
    assert (root / "@pa" / "data" / "pa").read_text() == "pa\n"
    assert sorted(p.name for p in (root / "@pb" / "data").iterdir()) == ["pb"]

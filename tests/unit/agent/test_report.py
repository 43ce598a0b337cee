"""Status building: states, messages, health and restarts as the server will see them."""

from __future__ import annotations

from pathlib import Path

from shoal.agent.health import HealthState
from shoal.agent.metrics import AgentMetrics
from shoal.agent.reconcilers.containers import Outcome, Seen
from shoal.agent.reconcilers.secretfs import mount_fs_type
from shoal.agent.report import container_status, container_statuses, leftover_statuses, parse_meminfo
from shoal.agent.statefile import load_state, save_state
from shoal.model.container import ContainerSpec, HealthCheck
from shoal.model.state import NodeState, SecretValue
from shoal.model.status import NodeStatus

DATA = Path(__file__).parent.parent / "data" / "agent"
CHECK = HealthCheck(test=["CMD", "true"])


def spec(cid: str = "web-1-1", check: HealthCheck | None = None) -> ContainerSpec:
    return ContainerSpec(
        id=cid, service="web", replica=1, generation=1, image="r/web:1", ip="10.210.1.5", healthcheck=check
    )


def test_running_container_reports_pid_and_restarts() -> None:
    status = container_status(spec(), Seen("web-1-1", "running", 77, None, 5.0, 2), None, None, restarts=1)
    assert (status.state, status.pid, status.restarts, status.health, status.message) == (
        "running",
        77,
        3,
        "none",
        "",
    )
    assert status.ip == "10.210.1.5"


def test_failed_pull_is_reported_with_its_message() -> None:
    outcome = Outcome(
        "failed", "image r/web:1: layer sha256:ab: entry ../../etc/passwd climbs out of the rootfs"
    )
    status = container_status(spec(), None, outcome, None)
    assert status.state == "failed"
    assert "climbs out" in status.message


def test_pending_and_pulling() -> None:
    assert container_status(spec(), None, None, None).state == "pending"
    assert container_status(spec(), None, Outcome("pulling"), None).state == "pulling"


def test_exited_reports_code() -> None:
    status = container_status(spec(), Seen("web-1-1", "exited", None, 3, 5.0, 0), None, None)
    assert (status.state, status.exit_code, status.message) == ("exited", 3, "exited with code 3")


def test_health_starting_until_checked_then_unhealthy_with_message() -> None:
    running = Seen("web-1-1", "running", 7, None, 5.0, 0)
    assert container_status(spec(check=CHECK), running, None, None).health == "starting"
    bad = HealthState("unhealthy", 5.0, 50.0, failures=3, output="refused")
    status = container_status(spec(check=CHECK), running, None, bad)
    assert (status.health, status.message) == ("unhealthy", "health check failed 3 times: refused")


def test_statuses_and_metrics() -> None:
    specs = [spec("a"), spec("b"), spec("c")]
    observed = {"a": Seen("a", "running", 1, None, 1.0, 0)}
    statuses = container_statuses(specs, observed, {"b": Outcome("failed", "pull failed")}, {}, {})
    assert [s.state for s in statuses] == ["running", "failed", "pending"]
    metrics = AgentMetrics()
    metrics.observe(NodeStatus(node="n1", containers=statuses))
    text = metrics.render().decode()
    assert 'shoal_agent_containers{state="running"} 1.0' in text
    assert 'shoal_agent_containers{state="failed"} 1.0' in text


def test_meminfo_captured() -> None:
    assert parse_meminfo((DATA / "meminfo.txt").read_text()) == 24684096 * 1024
    assert parse_meminfo("") == 0


def test_mount_fs_type_captured() -> None:
    info = (DATA / "mountinfo.txt").read_text()
    assert mount_fs_type(info, "/var/lib/shoal/run/secrets/web-1") == "tmpfs"
    assert mount_fs_type(info, "/var/lib/shoal") == "ext4"
    assert mount_fs_type(info, "/run/netns/x") == "ext4"
    assert mount_fs_type(info, "/dev/shm") == "tmpfs"


def test_state_file_round_trip_private(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    assert load_state(path) is None
    state = NodeState(version=4, node="n1", subnet="10.210.1.0/24", containers=[spec()])
    save_state(path, state)
    assert (path.stat().st_mode & 0o777) == 0o600
    assert load_state(path) == state
    path.write_text("{broken")
    assert load_state(path) is None


def test_secret_values_never_reach_the_data_dir(tmp_path: Path) -> None:
    path, secrets_file = tmp_path / "data" / "state.json", tmp_path / "tmpfs" / "secrets.json"
    state = NodeState(
        version=2, node="n1", subnet="10.210.1.0/24", secrets=[SecretValue(name="db", value_b64="c2VjcmV0")]
    )
    save_state(path, state, secrets_file)
    assert "c2VjcmV0" not in path.read_text()
    assert (secrets_file.stat().st_mode & 0o777) == 0o600
    assert load_state(path, secrets_file) == state
    secrets_file.unlink()  # the machine rebooted: tmpfs is empty
    assert load_state(path, secrets_file) == state.model_copy(update={"secrets": []})


def test_containers_no_longer_desired_are_reported_until_gone() -> None:
    """A replica in its stop grace keeps its address reserved on the server (a failover reuses none)."""
    observed = {
        "web-1-1": Seen("web-1-1", "running", pid=7),
        "old-1-1": Seen("old-1-1", "running", pid=9, started_at=1.0, ip="10.210.0.2"),
        "done-1-1": Seen("done-1-1", "stopped", exit_code=0),
    }
    left = leftover_statuses(["web-1-1"], observed)
    assert [(s.id, s.state, s.message) for s in left] == [
        ("done-1-1", "exited", ""),
        ("old-1-1", "running", "stopping"),
    ]
    assert left[1].pid == 9
    assert left[1].ip == "10.210.0.2"  # the server keeps it from a new replica of another service

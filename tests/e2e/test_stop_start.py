"""Stops never block starts, on the sandbox: `service rm` of a service whose process ignores
SIGTERM (its grace runs out), then `deploy` of another service on the same node returns with the
new replica running while the first one is still inside its grace period.

The lingering process is found on the host by its unique command line (the sandbox's nodes share
the host's pid namespace); the test only reads /proc, it signals nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.helpers import Sandbox, wait_for

GRACE_S = 30
LINGER = ["sleep", "3607"]  # pid 1 of a container: SIGTERM has no handler, so it is ignored

LINGERING = """services:
  lingers:
    image: {image}
    command: {command}
    stop_grace_period: {grace}s
    deploy: {{placement: {{constraints: ["node.hostname == n1"]}}}}
"""

QUICK = """services:
  quick:
    image: {image}
    deploy: {{placement: {{constraints: ["node.hostname == n1"]}}}}
"""


def _lingering_pids() -> list[int]:
    wanted = ("\0".join(LINGER) + "\0").encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes() == wanted:
                    pids.append(int(entry.name))
            except OSError:
                continue  # gone meanwhile
    return pids


@pytest.fixture
def files(cluster: Sandbox, tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    image = f"{cluster.status['registry']}/example/hello:latest"
    lingering, quick = tmp_path / "lingering.yaml", tmp_path / "quick.yaml"
    command = "[" + ", ".join(f'"{part}"' for part in LINGER) + "]"
    lingering.write_text(LINGERING.format(image=image, command=command, grace=GRACE_S))
    quick.write_text(QUICK.format(image=image))
    try:
        yield lingering, quick
    finally:
        for project in ("stopslow", "startfast"):
            cluster.shoal("project", "rm", project)
        wait_for(lambda: not _lingering_pids(), GRACE_S + 30, "the lingering container gone")


def test_a_deploy_is_not_held_up_by_a_stop_in_its_grace(cluster: Sandbox, files: tuple[Path, Path]) -> None:
    lingering, quick = files
    got = cluster.shoal("deploy", "-f", str(lingering), "-p", "stopslow", timeout=300)
    assert got.returncode == 0, got.stderr or got.stdout
    wait_for(lambda: bool(_lingering_pids()), 30, "the lingering process running")

    removed = cluster.shoal("service", "rm", "stopslow.lingers")
    assert removed.returncode == 0, removed.stderr
    got = cluster.shoal("deploy", "-f", str(quick), "-p", "startfast", timeout=300)
    assert got.returncode == 0, got.stderr or got.stdout
    # deploy returned with `quick` running; the removed replica is still inside its grace
    assert _lingering_pids(), "the first container's grace ended before the deploy returned"
    quick_tasks = [t for t in cluster.shoal_json("ps") if t["service"] == "quick"]
    assert [t["state"] for t in quick_tasks] == ["running"], quick_tasks
    wait_for(lambda: not _lingering_pids(), GRACE_S + 30, "the lingering container killed after its grace")

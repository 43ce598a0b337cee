"""Deploy-to-running latency of one replica with a cached image, against podman and raw runc.

Whole path: `shoal deploy -f` (CLI → API, which places the replica in the deploy's transaction →
agent long-poll → runc) until the API reports the replica running (its `replica.running` event on
the event stream), on a one-node sandbox, after a first deploy has cached the image; also split
into the CLI's own time and what follows it.
Also the same deploy while another container on that node is inside a 10 s stop grace period
(its process ignores SIGTERM): a stop must not hold up a start (target: within 1.2x of idle).
Same-run baselines: `podman run -d` and `runc run -d` of the same image (the example app, from
its OCI layout), podman with its own throwaway storage, with a bridge network and with none; and
the floor of any Python CLI on the libraries shoal's uses: a minimal click + httpx program that
sends the same file to the same API (validated only: `dry_run`) and waits for the answer.
Prints JSON with p50/p95 per path.
"""

from __future__ import annotations

import argparse
import compileall
import functools
import ipaddress
import json
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import shoal as shoal_package
from shoal.client import Client
from shoal.client.contexts import ContextStore
from shoal.errors import ShoalError
from shoal.sandbox import images, teardown
from shoal.sandbox.session import Session, temporary_sandbox

IMAGE = "example/hello:latest"
TASK_PREFIX = "bench-lat-"  # the `lat` service of project `bench`: its task and container ids
# podman's default rlimits exceed this machine's hard limits
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
COMPOSE = """
services:
  lat:
    image: {image}
    pull_policy: missing  # the image is cached: used as pulled, as any tag but latest is by default
    environment: {{RUN: "{run}"}}
    deploy:
      replicas: 1
      placement: {{constraints: ["node.hostname == n1"]}}
      restart_policy: {{condition: any, delay: 1s}}
"""


LINGER = """
services:
  linger:
    image: {image}
    pull_policy: missing
    command: ["sleep", "3600"]  # pid 1 without a TERM handler: its stop waits out the grace
    stop_grace_period: 10s
    deploy:
      placement: {{constraints: ["node.hostname == n1"]}}
"""


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"runs": len(samples), "p50_s": round(statistics.median(ordered), 4), "p95_s": round(p95, 4)}


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def shoal_runs(session: Session, runs: int, workdir: Path, stop_runs: int) -> dict[str, list[float]]:
    """`shoal deploy --detach` (CLI → API) until the API reports the replica running (agent → runc).

    The end is the `replica.running` event, read from the API's event stream (server-sent, woken
    by the agent's status report): waiting costs no CPU, where polling the API every 10 ms kept
    half a core of this 2-core machine busy and slowed the agent's start by 40 ms (measured).
    Per run: the whole path, the CLI's own time, and what follows the CLI's exit (at or below
    zero when the replica runs before the CLI ends: it sends the file before it loads what it
    needs to read the answer); then `shoal deploy` without --detach, which returns once it has
    seen the replica running (its wait is woken by the same events).
    """
    image = f"{session.record.registry}/{IMAGE}"
    compose = workdir / "compose.yaml"
    context = ContextStore(Path(session.env["XDG_CONFIG_HOME"]) / "shoal").load().contexts["sandbox"]
    found: dict[str, list[float]] = {
        "whole": [],
        "cli": [],
        "after_cli": [],
        "wait": [],
        "served_after_wait": [],
    }
    with Client(context.server, context.token, Path(context.ca or "")) as api:
        dns = str(next(ipaddress.ip_network(api.nodes()[0].subnet).hosts()))  # the node's bridge
        running = RunningEvents(Client(context.server, context.token, Path(context.ca or "")))

        def deploy(run: int) -> tuple[float, float]:
            compose.write_text(COMPOSE.format(image=image, run=run))
            running.clear()
            began = time.perf_counter()
            session.check("deploy", "-f", str(compose), "--project", "bench", "--detach")
            returned = time.perf_counter()
            ended = running.wait()
            return returned - began, ended - returned

        def waited(run: int) -> float:
            """`shoal deploy` without --detach: until it has seen the replica running (served, since
            issue 15); then how long after its return the node's DNS still did not list it."""
            compose.write_text(COMPOSE.format(image=image, run=run))
            took = timed(lambda: session.check("deploy", "-f", str(compose), "--project", "bench"))
            found["served_after_wait"].append(timed(lambda: until_resolved(session, dns)))
            return took

        deploy(-1)  # pulls and caches the image
        for run in range(runs):
            removed(api, session)
            cli, after = deploy(run)
            found["whole"].append(cli + after)
            found["cli"].append(cli)
            found["after_cli"].append(after)
            removed(api, session)
            found["wait"].append(waited(run))
        found["during_stop"] = [
            during_stop(session, api, functools.partial(deploy, run), workdir) for run in range(stop_runs)
        ]
        api.remove_service("lat")
        found["floor"] = [timed(functools.partial(_floor_request, compose, session)) for _ in range(runs)]
    return found


FLOOR = """
import gc, json, ssl, sys
gc.disable()
sys.modules["httpx._main"] = None  # as shoal.entry: not httpx's own command line (rich)
import click, httpx

@click.command()
@click.argument("compose", type=click.File())
def send(compose):
    config = json.load(open(sys.argv[2]))["contexts"]["sandbox"]
    tls = ssl.create_default_context(cafile=config["ca"])
    headers = {"Authorization": f"Bearer {config['token']}"}
    with httpx.Client(base_url=config["server"] + "/api/v1", headers=headers, verify=tls) as http:
        body = {"compose": compose.read(), "project": "bench", "dry_run": True}
        http.post("/deploy", json=body).raise_for_status()

send(sys.argv[1:2])
"""


def _floor_request(compose: Path, session: Session) -> None:
    """The floor: interpreter, click and httpx, one TLS request and its answer (see FLOOR)."""
    config = Path(session.env["XDG_CONFIG_HOME"]) / "shoal" / "config.json"
    _quiet([sys.executable, "-c", FLOOR, str(compose), str(config)])


def removed(api: Client, session: Session) -> None:
    """The `lat` service removed and its container gone (its stop takes the grace period)."""
    api.remove_service("lat")
    while api.tasks(service="lat") or containers_left(session):
        time.sleep(0.1)


def during_stop(
    session: Session, api: Client, deploy: Callable[[], tuple[float, float]], workdir: Path
) -> float:
    """Deploy to running of `lat` just after `linger` on the same node was removed: its 10 s
    grace runs while `lat` starts. Then waits for `linger` to be gone, so each run starts alike."""
    removed(api, session)
    linger = workdir / "linger.yaml"
    linger.write_text(LINGER.format(image=f"{session.record.registry}/{IMAGE}"))
    session.check("deploy", "-f", str(linger), "--project", "bench")  # until it runs
    api.remove_service("linger")
    cli, after = deploy()
    if not containers_left(session, "linger"):
        raise SystemExit("the lingering container ended before the deploy: no stop to overlap")
    while containers_left(session, "linger"):
        time.sleep(0.2)
    return cli + after


def until_resolved(session: Session, server: str) -> None:
    """Until the node's own DNS server lists the `lat` replica (busybox nslookup in the node)."""
    holder = session.record.nodes[0].holder_pid
    argv = [
        "nsenter",
        f"--net=/proc/{holder}/ns/net",
        "busybox",
        "nslookup",
        "lat.bench.shoal.internal",
        server,
    ]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        got = subprocess.run(argv, capture_output=True, text=True, check=False)
        if "Address" in got.stdout.split("Name:", 1)[-1]:
            return
        time.sleep(0.005)
    raise SystemExit("the replica never appeared in the node's DNS")


class RunningEvents:
    """When each `lat` replica.running event (named by its task id) arrived, from a stream on a thread."""

    def __init__(self, api: Client) -> None:
        self.arrived: queue.Queue[float] = queue.Queue()
        since = max((e.id for e in api.events(limit=1)), default=0)  # none missed while it opens
        threading.Thread(target=self._read, args=(api, since), daemon=True).start()

    def _read(self, api: Client, since: int) -> None:
        try:
            for event in api.stream_events(since=since):
                if event.kind == "replica.running" and event.subject.startswith(TASK_PREFIX):
                    self.arrived.put(time.perf_counter())
        except ShoalError:  # the sandbox went down at the end
            return

    def clear(self) -> None:
        while not self.arrived.empty():
            self.arrived.get_nowait()

    def wait(self) -> float:
        return self.arrived.get(timeout=60)


def containers_left(session: Session, service: str = "lat") -> bool:
    """Whether the node still has a container of the service (stopping one takes its grace)."""
    holder = session.record.nodes[0].holder_pid
    prefix = f"bench-{service}-"  # <project>-<service>-<replica>-<generation>
    return any(
        cid.startswith(prefix) for _, cid in teardown.runc_containers(Path(f"/proc/{holder}/root/run"))
    )


PODMAN_NETNS = "sbx-bench-podman"


def podman_network(workdir: Path) -> list[str]:
    """A bridge network like podman's default one, in a throwaway netns (its bridge, veths and
    firewall rules stay there; the host's are untouched). Returns the prefix that runs podman in it."""
    conf = json.loads(Path("/etc/cni/net.d/87-podman-bridge.conflist").read_text())
    bridge = conf["plugins"][0]
    bridge["bridge"], conf["name"] = "sbxbenchbr0", "sbxbench"
    bridge["ipam"]["dataDir"] = str(workdir / "cni")
    bridge["ipam"]["ranges"] = [[{"subnet": "10.213.0.0/24", "gateway": "10.213.0.1"}]]
    (workdir / "net").mkdir(parents=True, exist_ok=True)
    (workdir / "net" / "sbxbench.conflist").write_text(json.dumps(conf))
    _quiet(["ip", "netns", "add", PODMAN_NETNS])
    return ["nsenter", f"--net=/run/netns/{PODMAN_NETNS}"]


def podman_runs(layout: Path, runs: int, workdir: Path) -> dict[str, list[float]]:
    """`podman run -d` of the same image (pulled from its OCI layout), own storage: with a bridge
    network as shoal's replica has, and with none."""
    enter = podman_network(workdir)
    # runc: podman's default crun refuses the cgroup mode of a fresh Debian 12 (hybrid)
    base = [*enter, "podman", "--runtime", "runc", "--root", str(workdir / "root")]
    base += ["--runroot", str(workdir / "runroot")]
    base += ["--network-config-dir", str(workdir / "net")]
    samples: dict[str, list[float]] = {"bridge": [], "none": []}
    try:
        pulled = subprocess.run(
            [*base, "pull", "--quiet", f"oci:{layout}:latest"], capture_output=True, text=True, check=False
        )
        if pulled.returncode != 0:
            raise SystemExit(f"podman pull failed: {pulled.stderr.strip()}")
        image = pulled.stdout.strip().splitlines()[-1]
        for network, found in samples.items():
            net = "sbxbench" if network == "bridge" else "none"
            for run in range(runs):
                name = f"sbx-bench-{network}-{run}"
                argv = [*base, "run", "-d", "--network", net, *ULIMITS, "--name", name, image]
                found.append(timed(functools.partial(_quiet, argv)))
                _quiet([*base, "rm", "-f", "-t", "0", name])
    finally:
        subprocess.run([*base, "rm", "--all", "--force", "-t", "0"], capture_output=True, check=False)
        subprocess.run([*base, "rmi", "--all", "--force"], capture_output=True, check=False)
        subprocess.run(["umount", str(workdir / "root" / "overlay")], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", PODMAN_NETNS], capture_output=True, check=False)
    return samples


def runc_runs(layout: Path, runs: int, workdir: Path) -> list[float]:
    bundle = workdir / "bundle"
    _quiet(["umoci", "unpack", "--image", f"{layout}:latest", str(bundle)])
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["terminal"] = False
    config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"] if n["type"] != "network"]
    config["linux"]["namespaces"].append({"type": "network"})
    samples = []
    for run in range(runs):
        config["linux"]["cgroupsPath"] = f"shoal-sbx-bench/r{run}"
        (bundle / "config.json").write_text(json.dumps(config))
        argv = ["runc", "--root", str(workdir / "runc"), "run", "-d", "--bundle", str(bundle), f"r{run}"]
        samples.append(timed(functools.partial(_quiet, argv)))
        _quiet(["runc", "--root", str(workdir / "runc"), "delete", "--force", f"r{run}"])
    teardown.remove_cgroups()
    return samples


def _quiet(argv: list[str]) -> None:
    subprocess.run(
        argv, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def shoal_figures(parts: dict[str, list[float]]) -> dict[str, object]:
    return {
        "shoal_deploy": percentiles(parts["whole"]),
        "shoal_cli_deploy_detach": percentiles(parts["cli"]),
        "shoal_after_cli_until_running": percentiles(parts["after_cli"]),
        "shoal_deploy_waiting_until_running": percentiles(parts["wait"]),
        # after the waiting deploy returned: until the node's DNS lists the replica (0 once served)
        "shoal_served_after_deploy_returned": percentiles(parts["served_after_wait"]),
        "python_click_httpx_request_floor": percentiles(parts["floor"]),
        "shoal_deploy_during_a_10s_stop_grace": percentiles(parts["during_stop"]),
        "during_stop_p50_over_idle_p50": round(
            statistics.median(parts["during_stop"]) / statistics.median(parts["whole"]), 2
        ),
        "during_stop_target_ratio": 1.2,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--stop-runs", type=int, default=8, help="runs during a stop (each waits 10 s)")
    parser.add_argument("--shoal-only", action="store_true", help="skip the podman and runc baselines")
    args = parser.parse_args()
    # the CLI runs from bytecode, as an installed package does (setup.sh compiles it; a module
    # edited since would otherwise be compiled again by every command)
    compileall.compile_dir(Path(shoal_package.__file__).parent, quiet=1)
    workdir = Path(tempfile.mkdtemp(prefix="sbx-bench-"))
    try:
        with temporary_sandbox(nodes=1, nat=0) as session:
            shoal_parts = shoal_runs(session, args.runs, workdir, args.stop_runs)
        shoal = shoal_parts["whole"]
        print(json.dumps({"shoal_deploy": percentiles(shoal)}), file=sys.stderr)
        if args.shoal_only:
            print(json.dumps({"benchmark": "deploy_latency", **shoal_figures(shoal_parts)}, indent=2))
            return
        layout = images.cached_build(images.example_app_spec(), workdir / "cache", "latest")
        podman = podman_runs(layout, args.runs, workdir / "podman")
        runc = runc_runs(layout, args.runs, workdir / "runc")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result: dict[str, object] = {
        **shoal_figures(shoal_parts),
        "podman_run_d_bridge_network": percentiles(podman["bridge"]),
        "podman_run_d_network_none": percentiles(podman["none"]),
        "runc_run_d": percentiles(runc),
    }
    for name, runs in (("bridge_network", podman["bridge"]), ("network_none", podman["none"])):
        ratio = statistics.median(shoal) / statistics.median(runs)
        result[f"shoal_p50_over_podman_{name}_p50"] = round(ratio, 2)
    print(json.dumps({"benchmark": "deploy_latency", **result}, indent=2))


if __name__ == "__main__":
    main()

"""docs/install.md, run as written: four machines made of sandbox nodes, every block in order.

`shoal sandbox up --nodes 4 --nat 2 --no-cluster` gives the network (n1 and n2 public at
203.0.113.11 and .12, n3 and n4 behind the NAT router), the registry and the node holders, and
nothing of shoal. Each block then runs with `bash -euo pipefail` inside the machine(s) its marker
names — server = n1, server2 = n2, home = n3, laptop = n4 — from `/root`, and must exit 0: a
renamed command or flag, a wrong path or a missing step fails here. What a person copies from
one machine to another is carried from a block's output to later blocks: `$ADMIN_TOKEN` and
`$JOIN_TOKEN` (the latest printed), and `$CA_FINGERPRINT` (openssl's). Runs first (file name),
before the session's shared sandbox.

What differs from real machines — each the least the sandbox needs, all of it declared here:
1. Install lines are checked, not run. `apt-get install` must name only packages installed on this
   machine, and every package of scripts/setup.sh but its test-only ones (TEST_ONLY);
   `pip install` must install /opt/shoal-src (the doc's name for this checkout) into /opt/shoal;
   the venv and the `/usr/local/bin/shoal` link are stood in for by a PATH whose `shoal` is this
   checkout's `.venv/bin/shoal` (`make setup`). `apt-get update` does nothing.
2. systemd: `systemctl` is a shell function. `enable --now UNIT` starts the `ExecStart=` of the unit
   file that `shoal server install` / `shoal agent install` wrote (to the machine's own
   /etc/systemd/system, a tmpfs), detached; `restart` ends it by pid and starts it again;
   `daemon-reload`, and `disable` of a unit never started (Debian's caddy, postgresql), do
   nothing. After a block that started a unit the test waits for what a person would see before
   going on: the server's health URL, the agent's node ready; and before `upgrade-check`, for
   the deploy's rollout to end (`shoal service ls` on the laptop), as the doc says to.
3. DNS: each machine's /etc/hosts (bound over in its mount namespace) maps shoal.example.com and
   app.example.com to 203.0.113.11 and server2.example.com to .12, instead of public A records.
4. ACME: `shoal server init` gets `--ingress-tls internal` appended (no Let's Encrypt here), so
   ingress certificates come from the cluster's internal root, and the doc's `curl
   https://app.example.com/` gets `--cacert` with that root.
5. The Compose file's `image:` becomes a busybox httpd on port 80 built offline and pushed to the
   sandbox registry; `shoal join` gets `--set insecure_registries=REGISTRY` (it serves plain
   HTTP) and `--set cgroup_parent=shoal-sbx-NODE` (the machines share this host's cgroups).
6. Each machine's /root is a tmpfs of its own (its home: the CLI's context, the backups).
7. The external PostgreSQL of "Several servers" (`$DATABASE_URL`) is the sandbox's: one on
   server2's address, port 5433, trusting the sandbox's ranges (`shoal.sandbox.servers`); `scp`
   to `root@HOST:/root/` copies into that machine's /root through /proc/HOLDER/root.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from shoal.sandbox import images, state
from shoal.sandbox.cluster import mesh_ready
from shoal.sandbox.net import sandbox_namespaces
from shoal.sandbox.nodes import enter
from shoal.sandbox.procs import end_processes
from shoal.sandbox.servers import start_database
from shoal.sandbox.teardown import cgroup_pids
from tests.e2e.helpers import SANDBOX, wait_for
from tests.support.docblocks import Block, blocks, logical_lines

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "install.md"
MACHINES = {"server": "n1", "server2": "n2", "home": "n3", "laptop": "n4"}
SERVER_IPS = {"server": "203.0.113.11", "server2": "203.0.113.12"}
HOSTS = {"server": "shoal.example.com app.example.com", "server2": "server2.example.com"}
API = "https://203.0.113.11:7443"
IMAGE = "install-doc/web:1.0"
TEST_ONLY = {"busybox-static", "docker-registry", "podman", "chromium", "psmisc", "procps"}
TEST_ONLY |= {"iputils-ping", "iperf3", "netcat-openbsd", "curl"}
CARRIED = {
    "ADMIN_TOKEN": re.compile(r"admin token:\s+(\S+)"),
    "JOIN_TOKEN": re.compile(r"(shoal-join\.[A-Za-z0-9_-]+\.[0-9a-f]{64})"),
    "CA_FINGERPRINT": re.compile(r"Fingerprint=([0-9A-Fa-f:]+)"),
}
PRELUDE = r"""
systemctl() {
  local verb=$1; shift
  [ "${1:-}" = --now ] && shift
  case $verb in
    daemon-reload) ;;
    enable|start) for u in "$@"; do _unit_start "$u"; done ;;
    restart) for u in "$@"; do _unit_stop "$u"; _unit_start "$u"; done ;;
    disable|stop) for u in "$@"; do _unit_stop "$u"; done ;;
    *) echo "systemctl $verb: not stood in for by the test" >&2; return 1 ;;
  esac
}
_unit_start() {
  local name=${1%.service} cmd
  local file=/etc/systemd/system/$name.service
  [ -f "$file" ] || { echo "systemctl: Unit $name.service not found." >&2; return 1; }
  cmd=$(sed -n 's/^ExecStart=//p' "$file")
  setsid $cmd >>"$SHOAL_DOC_UNITS/$name.log" 2>&1 </dev/null &
  echo $! >"$SHOAL_DOC_UNITS/$name.pid"
  echo "$name $!" >>"$SHOAL_DOC_UNITS/started"
}
_unit_stop() {
  local pidfile=$SHOAL_DOC_UNITS/${1%.service}.pid pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$pidfile"
}
set -euo pipefail
cd /root
"""


@dataclass
class Machines:
    """The sandbox standing in for the doc's machines, and what the blocks carried so far."""

    dir: Path
    record: state.SandboxState
    bin_dir: Path
    carried: dict[str, str] = field(default_factory=dict)
    stood_in: set[str] = field(default_factory=set)
    started: dict[str, int] = field(default_factory=dict)  # machine → lines of its `started` seen
    outputs: list[str] = field(default_factory=list)  # every block's stdout, in order

    def holder(self, machine: str) -> int:
        return self.record.node(MACHINES[machine]).holder_pid

    def units(self, machine: str) -> Path:
        path = self.dir / "units" / machine
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def ca(self) -> Path:
        return self.dir / "nodes" / MACHINES["server"] / "server" / "ca.crt"

    @property
    def ingress_root(self) -> Path:
        return self.dir / "nodes" / MACHINES["server"] / "server" / "ingress-ca.crt"

    def run(self, machine: str, script: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        env = {"PATH": f"{self.bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}
        env |= {"SHOAL_DOC_UNITS": str(self.units(machine)), **self.carried}
        argv = [*enter(self.holder(machine)), "bash", "-c", PRELUDE + script]
        return subprocess.run(
            argv, input=stdin, capture_output=True, text=True, env=env, timeout=300, check=False
        )


def _sandbox(*args: str, directory: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = [*SANDBOX, *args, "--dir", str(directory)]
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300, env=env)


def _prepare(machines: Machines) -> None:
    """Per machine: /etc/hosts naming the server, its own /root and /etc/systemd/system."""
    hosts = machines.dir / "hosts"
    names = "".join(f"{SERVER_IPS[m]} {HOSTS[m]}\n" for m in SERVER_IPS)
    hosts.write_text(f"127.0.0.1 localhost\n{names}")
    mounts = f"mount --bind {hosts} /etc/hosts && mount -t tmpfs -o mode=0700 tmpfs /root"
    mounts += " && mount -t tmpfs -o mode=0755 tmpfs /etc/systemd/system"
    for machine in MACHINES:
        argv = [*enter(machines.holder(machine)), "sh", "-c", mounts]
        subprocess.run(argv, check=True, capture_output=True, timeout=30)
    machines.bin_dir.mkdir(parents=True, exist_ok=True)
    (machines.bin_dir / "shoal").symlink_to(ROOT / ".venv" / "bin" / "shoal")
    layout = images.cached_build(images.example_app_spec(port=80), machines.dir / "image-cache", "1.0")
    images.push(layout, "1.0", f"{machines.record.registry}/{IMAGE}")


def _started_pids(directory: Path) -> list[int]:
    return [int(p.read_text()) for p in (directory / "units").glob("*/*.pid")]


@pytest.fixture(scope="module")
def machines() -> Iterator[Machines]:
    if sandbox_namespaces():
        pytest.fail("a sandbox already exists on this machine; run `shoal sandbox down` first")
    tmp = Path(tempfile.mkdtemp(prefix="sbx-install-doc-"))
    directory, env = tmp / "sbx", {**os.environ, "XDG_CONFIG_HOME": str(tmp / "config")}
    try:
        up = _sandbox("up", "--nodes", "4", "--nat", "2", "--no-cluster", directory=directory, env=env)
        assert up.returncode == 0, f"sandbox up failed: {up.stderr.strip()}"
        found = Machines(directory, state.load(directory), tmp / "bin")
        _prepare(found)
        found.carried["DATABASE_URL"] = start_database(found.record.node(MACHINES["server2"]))
        yield found
    finally:
        end_processes(_started_pids(directory), grace_s=20)
        down = _sandbox("down", directory=directory, env=env)
        subprocess.run(["rm", "-rf", str(tmp)], check=False)
        assert down.returncode == 0, down.stderr
        assert sandbox_namespaces() == [] and cgroup_pids() == [], "the sandbox outlived `down`"


# --- the stand-ins for lines a sandbox cannot run as written (docstring, 1, 4, 5)


def _setup_packages() -> set[str]:
    text = (ROOT / "scripts" / "setup.sh").read_text()
    listed = re.search(r"PACKAGES=\(([^)]*)\)", text)
    assert listed, "scripts/setup.sh has no PACKAGES=(...)"
    return set(listed.group(1).split())


def _check_apt_install(words: list[str]) -> None:
    packages = {w for w in words[2:] if not w.startswith("-")}
    missing = _setup_packages() - TEST_ONLY - packages
    assert not missing, f"docs/install.md's apt-get install lacks {sorted(missing)} (scripts/setup.sh)"
    query = ["dpkg-query", "-W", "-f=${Package} ${Status}\n", *sorted(packages)]
    listed = subprocess.run(query, capture_output=True, text=True, check=False).stdout
    installed = {line.split()[0] for line in listed.splitlines() if "install ok installed" in line}
    assert packages <= installed, f"apt-get install names packages not installed here: {packages - installed}"


def _install_line(words: list[str]) -> str | None:
    """The check of an install line (None: not one); each stands in for the line, run as `:`."""
    if words[:2] == ["apt-get", "update"]:
        return "apt-get update"
    if words[:2] == ["apt-get", "install"]:
        _check_apt_install(words)
        return "apt-get install"
    if words[:3] == ["python3", "-m", "venv"]:
        assert words[-1] == "/opt/shoal", words
        return "venv"
    if words[0].endswith("pip") and words[1:2] == ["install"]:
        assert words == ["/opt/shoal/bin/pip", "install", "/opt/shoal-src"], words
        return "pip install"
    if words[:2] == ["ln", "-sf"]:
        assert words[2:] == ["/opt/shoal/bin/shoal", "/usr/local/bin/shoal"], words
        return "link"
    return None


def stand_in(line: str, machines: Machines, machine: str) -> str:
    """One logical line of a block as the sandbox runs it (most lines: unchanged)."""
    words = line.split("#", 1)[0].split()
    if not words:
        return line
    installed = _install_line(words)
    if installed:
        machines.stood_in.add(installed)
        return f": {installed} - checked by the test, not run"
    extra, kind = "", ""
    if words[:3] == ["shoal", "server", "init"]:
        extra, kind = " --ingress-tls internal", "server init"
    elif words[:2] == ["shoal", "join"]:
        extra = f" --set cgroup_parent=shoal-sbx-{MACHINES[machine]}"
        extra, kind = extra + f" --set insecure_registries={machines.record.registry}", "join"
    elif words[0] == "curl" and "https://app.example.com/" in words:
        extra, kind = f" --cacert {machines.ingress_root}", "curl"
    elif words[0] == "scp":
        machines.stood_in.add("scp")
        return _scp(words, machines)
    if extra:
        assert "#" not in line, f"a comment after a line the test extends: {line}"
        machines.stood_in.add(kind)
    return line + extra


def _scp(words: list[str], machines: Machines) -> str:
    """`scp FILES root@HOST:/root/` → a copy into that machine's /root (through its holder)."""
    user_host, _, path = words[-1].partition(":")
    machine = next(m for m, names in HOSTS.items() if user_host.split("@")[-1] in names.split())
    assert path.rstrip("/") == "/root", f"scp to {path}: the test copies into /root only"
    return f"cp {' '.join(words[1:-1])} /proc/{machines.holder(machine)}/root/root/"


def stand_in_file(block: Block, machines: Machines) -> str:
    """A file block as written on the machine: the Compose file's image is the sandbox's."""
    if block.file != "compose.yaml":
        return block.body
    machines.stood_in.add("image")
    image = f"{machines.record.registry}/{IMAGE}"
    return re.sub(r"(?m)^(\s*image:\s*)\S+$", lambda m: m.group(1) + image, block.body)


# --- running the blocks


def _api_context(machines: Machines) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(machines.ca))
    context.check_hostname = False  # the certificate names shoal.example.com; the host dials its IP
    return context


def _server_healthy(machines: Machines, machine: str) -> bool:
    url = f"https://{SERVER_IPS[machine]}:7443/api/v1/health"
    try:
        return httpx.get(url, verify=_api_context(machines), timeout=2).status_code == 200
    except (httpx.HTTPError, OSError):
        return False


def _node_ready(machines: Machines, node: str) -> bool:
    headers = {"Authorization": f"Bearer {machines.carried.get('ADMIN_TOKEN', '')}"}
    try:
        got = httpx.get(f"{API}/api/v1/nodes/{node}", headers=headers, verify=_api_context(machines))
    except (httpx.HTTPError, OSError):
        return False
    if got.status_code != 200:
        return False
    public = {"vm1", "vm2"}  # reached at their --endpoint; a NAT'd node must have shaken hands with vm1
    return mesh_ready([got.json()], public) if node in public else mesh_ready([got.json()], {"vm1"})


def _wait_for_started(machines: Machines, machine: str) -> None:
    """What a person waits for after `systemctl enable --now`: the server answers, the node is ready."""
    started_file = machines.units(machine) / "started"
    lines = started_file.read_text().splitlines() if started_file.exists() else []
    for entry in lines[machines.started.get(machine, 0) :]:
        unit = entry.split()[0]
        try:
            if unit == "shoal-server":
                wait_for(lambda: _server_healthy(machines, machine), 60, f"{machine}: shoal-server healthy")
            elif unit == "shoal-agent":
                node = _agent_node(machines, machine)
                wait_for(lambda n=node: _node_ready(machines, n), 90, f"{machine}: node {node} ready")
        except AssertionError as exc:
            log = (machines.units(machine) / f"{unit}.log").read_text(errors="replace")
            raise AssertionError(f"{exc}; {unit}.log ends:\n{log[-3000:]}") from None
    machines.started[machine] = len(lines)


def _agent_node(machines: Machines, machine: str) -> str:
    """The node name in the agent's unit (`Description=shoal agent (node NAME)`)."""
    units = Path(f"/proc/{machines.holder(machine)}/root/etc/systemd/system")
    found = re.search(r"\(node (\S+)\)", (units / "shoal-agent.service").read_text())
    assert found, "shoal-agent.service names no node"
    return found.group(1)


def _rollouts_settled(machines: Machines) -> bool:
    listed = machines.run("laptop", "shoal service ls --output json")
    assert listed.returncode == 0, listed.stderr
    return not any(row["rollout"]["state"] == "updating" for row in json.loads(listed.stdout))


def run_block(block: Block, machines: Machines) -> None:
    if "upgrade-check" in block.body:
        wait_for(lambda: _rollouts_settled(machines), 60, "the deploy's rollout to end")
    for machine in block.machines:
        where = f"docs/install.md:{block.line} on {machine}"
        if block.file:
            done = machines.run(machine, f'cat > "{block.file}"', stdin=stand_in_file(block, machines))
        else:
            script = "\n".join(stand_in(line, machines, machine) for line in logical_lines(block.body))
            done = machines.run(machine, script)
        output = done.stdout + done.stderr
        machines.outputs.append(done.stdout)
        assert done.returncode == 0, f"{where}: exit {done.returncode}\n{output[-3000:]}"
        for name, pattern in CARRIED.items():
            found = pattern.findall(output)
            if found:
                machines.carried[name] = found[-1]
        _wait_for_started(machines, machine)


def test_install_doc_runs_as_written(machines: Machines) -> None:
    runnable = [b for b in blocks(DOC.read_text()) if b.machines]
    assert len(runnable) >= 10, "docs/install.md lost its blocks"
    for block in runnable:
        run_block(block, machines)
    every = {"apt-get install", "pip install", "server init", "join", "image", "curl", "scp"}
    assert every <= machines.stood_in, f"the doc no longer has {every - machines.stood_in}"
    assert any("<h1>hello from" in out for out in machines.outputs), "the app never answered the curl"
    assert any("nothing blocks an upgrade" in out for out in machines.outputs)
    pids = _started_pids(machines.dir)
    assert len(pids) == 5 and all(Path(f"/proc/{pid}").exists() for pid in pids), "a unit died"
    summary = {"carried": sorted(machines.carried), "stood_in": sorted(machines.stood_in)}
    print(json.dumps(summary))

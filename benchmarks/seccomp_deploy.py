"""Container start as a user meets it, with Docker's seccomp profile and without it.

`benchmarks/seccomp_start.py` times the runtime step alone (config.json, runc create with the
filter compiled, runc start); this one times the whole start of a replica on a one-node sandbox:
`shoal deploy --detach` until the API reports the replica running (the agent's network
namespace, address, firewall and DNS, then runc), the same path `deploy_latency.py` measures.
The two kinds alternate in one run (a policy grants the sandbox's admin `seccomp=unconfined`),
so load on the machine hits both alike. Medians over --runs of each; prints JSON.
Usage (root): ``.venv/bin/python benchmarks/seccomp_deploy.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import compileall
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import deploy_latency as lat

import shoal as shoal_package
from shoal.client import Client
from shoal.client.contexts import ContextStore
from shoal.sandbox.session import Session, temporary_sandbox

COMPOSE = """
services:
  lat:
    image: {image}
    pull_policy: missing
    environment: {{RUN: "{run}"}}
    security_opt: {opts}
    deploy:
      placement: {{constraints: ["node.hostname == n1"]}}
"""
POLICY = """
grants:
  - name: bench
    roles: [admin]
    security_opt: [seccomp=unconfined]
"""
KINDS = {"seccomp": "[]", "unconfined": "[seccomp=unconfined]"}


def starts(session: Session, runs: int, workdir: Path) -> dict[str, list[float]]:
    """Per kind, deploy → replica.running of a fresh replica, the kinds taking turns."""
    image = f"{session.record.registry}/{lat.IMAGE}"
    (workdir / "policy.yaml").write_text(POLICY)
    session.check("policy", "set", "-f", str(workdir / "policy.yaml"))
    context = ContextStore(Path(session.env["XDG_CONFIG_HOME"]) / "shoal").load().contexts["sandbox"]
    compose = workdir / "compose.yaml"
    found: dict[str, list[float]] = {kind: [] for kind in KINDS}
    with Client(context.server, context.token, Path(context.ca or "")) as api:
        running = lat.RunningEvents(Client(context.server, context.token, Path(context.ca or "")))

        def deploy(run: int, kind: str) -> float:
            compose.write_text(COMPOSE.format(image=image, run=run, opts=KINDS[kind]))
            running.clear()
            began = time.perf_counter()
            session.check("deploy", "-f", str(compose), "--project", "bench", "--detach")
            return running.wait() - began

        deploy(-1, "seccomp")  # pulls and caches the image
        for run in range(runs):
            order = list(KINDS) if run % 2 == 0 else list(reversed(KINDS))
            for kind in order:
                lat.removed(api, session)
                found[kind].append(deploy(run, kind))
        api.remove_service("lat")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    compileall.compile_dir(Path(shoal_package.__file__).parent, quiet=1)
    with (
        tempfile.TemporaryDirectory(prefix="sbx-bench-") as work,
        temporary_sandbox(nodes=1, nat=0) as session,
    ):
        found = starts(session, args.runs, Path(work))
    med = {kind: statistics.median(v) for kind, v in found.items()}
    print(json.dumps({
        "benchmark": "seccomp_deploy",
        "runs": args.runs,
        "deploy_to_running_ms_median": {k: round(v * 1000, 1) for k, v in med.items()},
        "ratio_seccomp_over_unconfined": round(med["seccomp"] / med["unconfined"], 4),
        "target_ratio_max": 1.05,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()

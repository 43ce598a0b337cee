"""`shoal deploy` sends its request before the answer models load (cli, client); with --detach it
ends without loading them at all (its answer is read by client.receipt). pydantic itself is
loaded first: the CLI checks the file against the Compose schema before sending it, so that
every fault names a line of the user's own file (interpolation and env files happen here).

Loading them takes about 60 ms; the contexts file is read without them and the client loads its
models when the first answer is parsed (shoal.client.lazy), so the deploy reaches the server that
much sooner. Run in a fresh interpreter, with httpx's send replaced by a probe that records what
is loaded at that moment and then fails as an unreachable server would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

PROBE = """
import json, sys
import httpx
WATCHED = ("pydantic", "pydantic_core", "shoal.client.models", "shoal.model.state")
seen = []
def send(self, request, **kwargs):
    seen.append(sorted(m for m in WATCHED if m in sys.modules))
    raise httpx.ConnectError("probe: stopped here", request=request)
httpx.Client.send = send
sys.argv = ["shoal", *sys.argv[1:]]
import shoal.entry
try:
    shoal.entry.main()
except SystemExit:
    pass
print(json.dumps(seen))
"""


ANSWERED = PROBE.replace(
    'raise httpx.ConnectError("probe: stopped here", request=request)',
    'return httpx.Response(200, json={"project": "p", "services": [{"name": "web", "revision": 1}]},'
    " request=request)",
).replace("print(json.dumps(seen))", "print(json.dumps(sorted(m for m in WATCHED if m in sys.modules)))")


def loaded_at_send(tmp_path: Path, *args: str, probe: str = PROBE) -> tuple[Any, str]:
    context = {"server": "https://127.0.0.1:9", "token": "t", "ca": None}
    config = tmp_path / "config" / "shoal"
    config.mkdir(parents=True)
    (config / "config.json").write_text(json.dumps({"current": "c", "contexts": {"c": context}}))
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    env.pop("SHOAL_SERVER", None)
    found = subprocess.run(
        [sys.executable, "-c", probe, *args], capture_output=True, text=True, env=env, check=True
    )
    *printed, seen = found.stdout.splitlines()
    return json.loads(seen), "\n".join([*printed, found.stderr])


def test_deploy_sends_before_pydantic_loads(tmp_path: Path) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text("services:\n  web:\n    image: r/web:1\n")
    seen, stderr = loaded_at_send(tmp_path, "deploy", "-f", str(compose), "--detach")
    assert seen == [["pydantic", "pydantic_core"]]  # the schema, not the answer models
    assert stderr.strip() == "error: cannot reach server at https://127.0.0.1:9: probe: stopped here"


def test_the_probe_sees_models_a_command_loads_up_front(tmp_path: Path) -> None:
    """`ps` imports its models with its module: the probe must be able to tell."""
    seen, _ = loaded_at_send(tmp_path, "ps")
    assert seen and "pydantic" in seen[0]


def test_detached_deploy_reads_its_answer_without_pydantic(tmp_path: Path) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text("services:\n  web:\n    image: r/web:1\n")
    loaded, printed = loaded_at_send(tmp_path, "deploy", "-f", str(compose), "--detach", probe=ANSWERED)
    assert printed.strip() == "accepted project p: web (revision 1)"
    assert "shoal.client.models" not in loaded and "shoal.model.state" not in loaded

"""benchmarks/compose_parse.py runs over the whole corpus and prints its figures as JSON (its
shape only: figures come from running it, never from an assertion)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "compose_parse.py"
CORPUS = Path(__file__).resolve().parents[2] / "data" / "compose"


def test_the_benchmark_times_every_deployable_file_against_its_baseline() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH), "--runs", "1"], capture_output=True, text=True, check=True
    )
    figures = json.loads(out.stdout)
    sources = json.loads((CORPUS / "sources.json").read_text())
    deployable = {p for p in sources if "/subdir/" not in p and not p.endswith(".env")}
    assert {f["file"] for f in figures["per_file"]} == deployable
    assert figures["files"] == len(deployable)
    for f in figures["per_file"]:
        assert f["parse_validate_ms"] > 0 and f["yaml_load_ms"] > 0 and f["ratio"] > 0
    assert any(f["accepted"] for f in figures["per_file"])
    assert figures["parse_validate_ms_max"] >= figures["parse_validate_ms_median"]

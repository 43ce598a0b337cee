"""Parse + validate time of every Compose file of the corpus (tests/data/compose), as `shoal deploy
--dry-run` prepares it in the CLI (interpolation, .env, extends, schema, cross-checks), against a
same-run baseline: ruamel's round-trip load of the same text alone (what any Compose tool pays).

Prints JSON: per file the median of ``--runs`` interleaved runs of each and their ratio, then the
median and max over the corpus. Refused files are timed too (a refusal is a full parse).
Run: ``.venv/bin/python benchmarks/compose_parse.py [--runs 21]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from ruamel.yaml import YAML

from shoal.cli.deploy import local_disk
from shoal.model.compose_source import Options, prepare
from shoal.model.compose_types import ComposeError

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "compose"


def deployable() -> list[Path]:
    """The corpus files deployed on their own (not the companions other files name)."""
    sources = json.loads((CORPUS / "sources.json").read_text())
    return [CORPUS / p for p in sorted(sources) if "/subdir/" not in p and not p.endswith(".env")]


def shoal_parse(file: Path, text: str) -> Callable[[], object]:
    disk, folder = local_disk(str(file))  # the CLI's reader
    options = Options(shell={}, dir_name=folder)

    def run() -> object:
        try:
            return prepare(text, disk, options)
        except ComposeError as refused:
            return refused

    return run


def yaml_load(text: str) -> Callable[[], object]:
    return lambda: YAML(typ="rt", pure=True).load(text)


def seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_file(file: Path, runs: int) -> dict[str, object]:
    text = file.read_text()
    ours, base = shoal_parse(file, text), yaml_load(text)
    ours(), base()  # warm: imports, caches
    ours_s: list[float] = []
    base_s: list[float] = []
    for _ in range(runs):  # interleaved, so load from others on the machine hits both alike
        ours_s.append(seconds(ours))
        base_s.append(seconds(base))
    ours_ms, base_ms = statistics.median(ours_s) * 1e3, statistics.median(base_s) * 1e3
    accepted = not isinstance(ours(), ComposeError)
    return {
        "file": str(file.relative_to(CORPUS)),
        "bytes": len(text.encode()),
        "accepted": accepted,
        "parse_validate_ms": round(ours_ms, 3),
        "yaml_load_ms": round(base_ms, 3),
        "ratio": round(ours_ms / base_ms, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    files = [bench_file(f, args.runs) for f in deployable()]
    times = [float(str(f["parse_validate_ms"])) for f in files]
    ratios = [float(str(f["ratio"])) for f in files]
    summary = {
        "files": len(files),
        "runs_per_file": args.runs,
        "parse_validate_ms_median": round(statistics.median(times), 3),
        "parse_validate_ms_max": round(max(times), 3),
        "ratio_to_yaml_load_median": round(statistics.median(ratios), 2),
        "ratio_to_yaml_load_max": round(max(ratios), 2),
        "per_file": files,
    }
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()

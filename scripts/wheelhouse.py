"""Packs the distributions installed in a virtualenv back into wheels, for setup.sh's wheelhouse.

setup.sh installs shoal's Python dependencies from PyPI once, then keeps them here as wheels so the
next fresh clone (CI runs one on the same machine) installs the same versions without a registry:
a PyPI outage then no longer fails the build. Nothing in the project imports this; it runs under
the venv's own Python and uses only the standard library.

An installed distribution is an unpacked wheel plus what pip made of it: entry-point scripts it
generated, `.data` files it moved out of site-packages, INSTALLER/REQUESTED/direct_url.json. This
puts the moved files back under `<name>-<version>.data/` and writes a fresh RECORD.
"""

from __future__ import annotations

import base64
import configparser
import hashlib
import json
import sys
import zipfile
from importlib import metadata
from pathlib import Path

PIP_ADDED = {"INSTALLER", "REQUESTED", "direct_url.json", "RECORD"}


def main(target: str) -> None:
    out = Path(target)
    out.mkdir(parents=True, exist_ok=True)
    for dist in metadata.distributions():
        if not _is_editable(dist):
            _pack(dist, out)


def _is_editable(dist: metadata.Distribution) -> bool:
    """shoal itself (`pip install -e .`); a dependency from a URL is packed like any other."""
    direct = json.loads(dist.read_text("direct_url.json") or "{}")
    return bool(direct.get("dir_info", {}).get("editable"))


def _pack(dist: metadata.Distribution, out: Path) -> None:
    site = Path(str(dist.locate_file("")))
    info = _info_dir(dist)
    name, version = info.name.removesuffix(".dist-info").split("-", 1)
    wheel = out / f"{name}-{version}-{_tags(dist)}.whl"
    if wheel.exists():
        return
    skipped = _generated_scripts(dist)
    partial = wheel.with_suffix(".part")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        record = [_add(archive, site / rel, arc) for rel, arc in _members(dist, site, name, version, skipped)]
        _write_record(archive, f"{info.name}/RECORD", record)
    partial.rename(wheel)


def _info_dir(dist: metadata.Distribution) -> Path:
    return Path(str(dist._path))  # type: ignore[attr-defined]


def _tags(dist: metadata.Distribution) -> str:
    tags = [
        line.split(":", 1)[1].strip()
        for line in (dist.read_text("WHEEL") or "").splitlines()
        if line.startswith("Tag:")
    ]
    parts = [sorted({tag.split("-")[i] for tag in tags}) for i in range(3)]
    return "-".join(".".join(part) for part in parts)


def _generated_scripts(dist: metadata.Distribution) -> set[str]:
    parser = configparser.ConfigParser(delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(dist.read_text("entry_points.txt") or "")
    return {
        key
        for section in ("console_scripts", "gui_scripts")
        if parser.has_section(section)
        for key in parser[section]
    }


def _members(
    dist: metadata.Distribution, site: Path, name: str, version: str, skipped: set[str]
) -> list[tuple[str, str]]:
    members = []
    for file in dist.files or []:
        rel = str(file)
        arc = _archive_name(rel, site, f"{name}-{version}.data", skipped)
        if arc is not None and (site / rel).is_file():
            members.append((rel, arc))
    return members


def _archive_name(rel: str, site: Path, data: str, skipped: set[str]) -> str | None:
    parts = Path(rel).parts
    if "__pycache__" in parts or (parts[0].endswith(".dist-info") and parts[-1] in PIP_ADDED):
        return None
    if parts[0] != "..":
        return rel
    prefix = site.parents[2]
    moved = (site / rel).resolve().relative_to(prefix.resolve()).parts
    if moved[0] == "bin":
        return None if moved[-1] in skipped else f"{data}/scripts/{moved[-1]}"
    if moved[:2] == ("include", "site"):
        return f"{data}/headers/{moved[-1]}"
    return f"{data}/data/{'/'.join(moved)}"


def _add(archive: zipfile.ZipFile, path: Path, arc: str) -> str:
    body = path.read_bytes()
    if arc.split("/")[-2:-1] == ["scripts"] and body.startswith(b"#!" + sys.executable.encode()):
        body = b"#!python" + body[2 + len(sys.executable.encode()) :]
    info = zipfile.ZipInfo(arc, date_time=(1980, 1, 1, 0, 0, 0))
    info.external_attr = (path.stat().st_mode & 0o777 | 0o100000) << 16
    archive.writestr(info, body, zipfile.ZIP_DEFLATED)
    digest = base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=").decode()
    return f"{arc},sha256={digest},{len(body)}"


def _write_record(archive: zipfile.ZipFile, arc: str, lines: list[str]) -> None:
    archive.writestr(arc, "\n".join([*lines, f"{arc},,"]) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])

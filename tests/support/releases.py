"""The previous minor release's own code, exported from its git tag, for the version-skew tests.

`previous_release(current, tags)` picks the newest `vX.Y.Z` tag of the minor just before this
tree's version (v0.1.0 for 0.2.x). `exported_previous_release()` writes that tag's `shoal`
package into a temp dir with `git archive` (removed afterwards); `old_shoal(root)` is the argv
prefix that runs that tree's `shoal` with this venv's dependencies (the release's pyproject names
the same ones): its tree first on the path, and not the current directory (`PYTHONSAFEPATH`), so
this tree's editable install is not what runs. A clone made without tags still finds a release
recorded in `RELEASED` by its commit; one without that history fails with one line saying how to
fetch it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from shoal import __version__
from shoal.model.versions import minor_of

REPO = Path(__file__).resolve().parents[2]
_TAG = re.compile(r"v\d+\.\d+\.\d+")
# Each release's commit, for a clone made without tags (`git clone --no-tags`, some CI checkouts).
RELEASED = {"v0.1.0": "706f9fc365757bfaeae0c7f58cce28e0a638a53e"}


def previous_release(current: str, tags: list[str]) -> str | None:
    """The newest `vX.Y.Z` tag of the minor version just before `current` (None: there is none)."""
    have = minor_of(current)
    if have is None:
        return None
    wanted = [t for t in tags if _TAG.fullmatch(t) and minor_of(t[1:]) == (have[0], have[1] - 1)]
    return max(wanted, key=lambda t: tuple(int(p) for p in t[1:].split(".")), default=None)


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False)


@contextmanager
def exported_previous_release() -> Iterator[tuple[str, Path]]:
    """(version, root): the previous release's `shoal` package under `root`; removed afterwards."""
    tag = previous_release(__version__, [*_git("tag", "--list", "v*").stdout.split(), *RELEASED])
    if tag is None:
        pytest.fail(
            f"no git tag of the release before {__version__} (e.g. v0.1.0) in {REPO}:"
            " fetch the tags (`git fetch --tags`) to run the version-skew test"
        )
    root = Path(tempfile.mkdtemp(prefix="shoal-release-"))
    try:
        tarball = root / "release.tar"
        have_tag = _git("rev-parse", "--verify", "--quiet", f"refs/tags/{tag}").returncode == 0
        archive = _git("archive", "-o", str(tarball), tag if have_tag else RELEASED[tag], "shoal")
        if archive.returncode != 0:  # a shallow clone has the tag's name but not its commit
            why = archive.stderr.strip()
            pytest.fail(f"git archive {tag}: {why} (fetch the history: git fetch --unshallow --tags)")
        subprocess.run(["tar", "-x", "-C", str(root), "-f", str(tarball)], check=True)
        root.chmod(0o755)  # entered from a sandbox node too
        yield tag[1:], root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def old_shoal(root: Path) -> list[str]:
    """The argv prefix of the old release's `shoal` command (runs anywhere, any cwd)."""
    return ["env", "PYTHONSAFEPATH=1", f"PYTHONPATH={root}", sys.executable, "-m", "shoal"]

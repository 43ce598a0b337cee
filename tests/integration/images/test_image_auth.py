"""Credentials from an auth file: a registry with htpasswd auth serves only authenticated pulls."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.agent.images import ImageError, ImageStore
from shoal.sandbox.images import ImageSpec, cached_build
from shoal.sandbox.registry import start_registry
from tests.support.registry_fixtures import CACHE, free_port

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
USER, PASSWORD = "shi-user", "shi-password"


def bcrypt_line(user: str, password: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt

        return f"{user}:{crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))}\n"


@pytest.fixture
def work() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="shi-auth-"))
    try:
        yield path
    finally:
        shutil.rmtree(path)


@pytest.fixture
def private_ref(work: Path) -> Iterator[str]:
    """An image pushed (with credentials) to a registry that demands them."""
    htpasswd = work / "htpasswd"
    htpasswd.write_text(bcrypt_line(USER, PASSWORD))
    registry = start_registry(work / "registry", f"127.0.0.1:{free_port()}", htpasswd=htpasswd)
    try:
        ref = f"{registry.addr}/shi/private:latest"
        layout = cached_build(ImageSpec(cmd=("true",)), CACHE)
        creds = f"--dest-creds={USER}:{PASSWORD}"
        push = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false", creds, f"oci:{layout}:latest"]
        subprocess.run([*push, f"docker://{ref}"], check=True)
        yield ref
    finally:
        registry.stop()


def test_pull_with_auth_file(work: Path, private_ref: str) -> None:
    registry = private_ref.split("/", maxsplit=1)[0]
    auth = work / "auth.json"
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    auth.write_text(json.dumps({"auths": {registry: {"auth": token}}}))
    with pytest.raises(
        ImageError, match=r"^image .*/shi/private:latest: skopeo copy .*(unauthorized|authentication)"
    ):
        ImageStore(work / "anonymous", insecure=[registry]).pull(private_ref)
    image = ImageStore(work / "store", auth_file=auth, insecure=[registry]).pull(private_ref)
    assert image.config["config"]["Cmd"] == ["true"]

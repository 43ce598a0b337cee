"""Credentials from an auth file: a registry with htpasswd auth serves only authenticated pulls."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.agent.images import ImageError, ImageStore
from shoal.model.registry import RegistryAuth
from shoal.sandbox.images import ImageSpec, cached_build
from shoal.sandbox.registry import start_registry
from tests.support.registry_fixtures import CACHE, bcrypt_line, free_port

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
USER, PASSWORD = "shi-user", "shi-password"


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


def test_pull_with_a_login_from_the_state(
    work: Path, private_ref: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The node state's login reaches skopeo through a per-pull auth file that is gone after it."""
    registry = private_ref.split("/", maxsplit=1)[0]
    auth_dir = work / "run" / "pull-auth"
    store = ImageStore(work / "store", insecure=[registry], auth_dir=auth_dir)
    with pytest.raises(ImageError) as refused:
        store.pull(private_ref)
    assert "\n" not in str(refused.value)
    assert f"no login for {registry}: shoal registry login {registry}" in str(refused.value)
    wrong = [RegistryAuth(host=registry, username=USER, password="not-" + PASSWORD)]
    with pytest.raises(ImageError, match=r"unauthorized|authentication") as bad:
        store.pull(private_ref, logins=wrong)
    assert "not-" + PASSWORD not in str(bad.value) and "shoal registry login" not in str(bad.value)
    assert list(auth_dir.iterdir()) == []  # a failed pull leaves no auth file either
    other = RegistryAuth(host="elsewhere.example", username="x", password="y")
    good = [other, RegistryAuth(host=registry, username=USER, password=PASSWORD)]
    image = store.pull(private_ref, logins=good)
    assert image.config["config"]["Cmd"] == ["true"]
    assert list(auth_dir.iterdir()) == []
    assert PASSWORD not in caplog.text

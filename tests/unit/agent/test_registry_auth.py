"""Registry logins: which node needs which, the containers-auth.json a pull gets, and that the
saved state keeps them off the data dir."""

from __future__ import annotations

import base64
import json
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from shoal.agent.images.auth import auth_document, login_for, pull_auth_file
from shoal.agent.reconcilers.containers import ContainersReconciler
from shoal.agent.reconcilers.secretfs import SecretFs
from shoal.agent.statefile import load_state, logins_file, save_state
from shoal.errors import ShoalError
from shoal.model.container import ContainerSpec
from shoal.model.registry import RegistryAuth, logins_for, normalize_host, registry_host
from shoal.model.state import NodeState, SecretValue
from tests.unit.agent.test_start_overlap import FakeNetwork, FakeRuntime

PRIVATE = RegistryAuth(host="reg.example:5000", username="team", password="s3cret:with:colons")
HUB = RegistryAuth(host="docker.io", username="me", password="hub-pass")
OTHER = RegistryAuth(host="other.example", username="o", password="other-pass")


@pytest.mark.parametrize(
    ("image", "host"),
    [
        ("busybox", "docker.io"),
        ("library/busybox:1", "docker.io"),
        ("team/app:1", "docker.io"),
        ("index.docker.io/team/app", "docker.io"),
        ("reg.example:5000/team/app:1", "reg.example:5000"),
        ("REG.Example:5000/app@sha256:" + "a" * 64, "reg.example:5000"),
        ("localhost/app", "localhost"),
        ("localhost:5000/app", "localhost:5000"),
    ],
)
def test_registry_host_reads_references_as_docker_does(image: str, host: str) -> None:
    assert registry_host(image) == host


def test_normalize_host_accepts_host_port_and_refuses_the_rest() -> None:
    assert normalize_host("https://Reg.Example:5000/") == "reg.example:5000"
    assert normalize_host("registry-1.docker.io") == "docker.io"
    for bad in ("", "a b", "reg.example/path", "reg.example:port", "-bad.example"):
        with pytest.raises(ValueError, match="not a registry host"):
            normalize_host(bad)


def test_a_node_gets_only_the_logins_of_its_own_images_registries() -> None:
    stored = {login.host: login for login in (PRIVATE, HUB, OTHER)}
    assert logins_for(["reg.example:5000/app:1", "reg.example:5000/db:2"], stored) == [PRIVATE]
    assert logins_for(["busybox", "reg.example:5000/app:1"], stored) == [HUB, PRIVATE]
    assert logins_for(["public.example/app:1"], stored) == []
    assert logins_for([], stored) == []


def test_auth_file_is_containers_auth_json() -> None:
    token = base64.b64encode(b"team:s3cret:with:colons").decode()
    assert auth_document([PRIVATE]) == {"auths": {"reg.example:5000": {"auth": token}}}
    assert login_for("reg.example:5000", [HUB, PRIVATE]) is PRIVATE
    assert login_for("nowhere.example", [HUB, PRIVATE]) is None


def test_pull_auth_file_is_private_and_gone_after_the_block(tmp_path: Path) -> None:
    parent = tmp_path / "pull-auth"
    with pull_auth_file(PRIVATE, None, parent) as path:
        assert path is not None and path.parent.parent == parent
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert json.loads(path.read_text()) == auth_document([PRIVATE])
    assert list(parent.iterdir()) == []
    with pytest.raises(RuntimeError), pull_auth_file(PRIVATE, None, parent):
        raise RuntimeError("the pull failed")
    assert list(parent.iterdir()) == []


def test_without_a_login_the_configured_file_or_none_is_used(tmp_path: Path) -> None:
    with pull_auth_file(None, tmp_path / "configured.json", tmp_path) as path:
        assert path == tmp_path / "configured.json"
    with pull_auth_file(None, None, tmp_path) as path:
        assert path is None
    assert list(tmp_path.iterdir()) == []


def test_password_never_in_repr() -> None:
    assert "s3cret" not in repr(PRIVATE) and "s3cret" not in str(PRIVATE)
    assert "s3cret" not in repr(NodeState(node="n", subnet="10.210.1.0/24", registry_auths=[PRIVATE]))


def test_saved_state_keeps_logins_off_the_data_dir(tmp_path: Path) -> None:
    state_file, secrets_file = tmp_path / "data" / "state.json", tmp_path / "tmpfs" / ".state-secrets.json"
    secret = SecretValue(name="db", value_b64="eA==")
    state = NodeState(node="n", subnet="10.210.1.0/24", secrets=[secret], registry_auths=[PRIVATE])
    save_state(state_file, state, secrets_file)
    assert "s3cret" not in state_file.read_text()
    assert stat.S_IMODE(logins_file(secrets_file).stat().st_mode) == 0o600
    assert load_state(state_file, secrets_file) == state
    save_state(state_file, state.model_copy(update={"registry_auths": []}), secrets_file)
    assert "s3cret" not in logins_file(secrets_file).read_text()  # a removed login is forgotten
    assert load_state(state_file, secrets_file) == state.model_copy(update={"registry_auths": []})


@dataclass
class PrivateImages:
    """A registry that serves only with PRIVATE's login (the fake of this one test: the real pull
    against htpasswd is tests/integration/images/test_image_auth.py)."""

    pulls: list[list[str]] = field(default_factory=list)

    def pull(
        self, ref: str, insecure: Any, policy: str = "always", logins: Any = (), deadline: Any = None
    ) -> Any:
        self.pulls.append([login.host for login in logins])
        if PRIVATE not in logins:
            raise ShoalError(f"image {ref}: unauthorized (no login for reg.example:5000)")
        return type("Image", (), {"digest": "sha256:" + "b" * 64})()

    def gc(self, in_use: Any) -> list[str]:
        return []


def test_a_new_login_retries_a_failed_pull_without_waiting_its_back_off(tmp_path: Path) -> None:
    log: list[str] = []
    runtime, images = FakeRuntime(log), PrivateImages()
    reconciler = ContainersReconciler(runtime, images, SecretFs(tmp_path), FakeNetwork(log, plugged=True))
    reconciler.clock = lambda: 1000.0  # time stands still: only a new login can end the back-off
    spec = ContainerSpec(id="app-1", image="reg.example:5000/app:1")
    state = NodeState(node="n1", subnet="10.210.1.0/24", containers=[spec])
    reconciler.reconcile(state, [], {})
    assert (
        reconciler.outcomes["app-1"].state == "failed"
        and "unauthorized" in reconciler.outcomes["app-1"].message
    )
    reconciler.reconcile(state, [], {})
    assert len(images.pulls) == 1  # still backing off
    reconciler.reconcile(state.model_copy(update={"version": 2, "registry_auths": [PRIVATE]}), [], {})
    assert images.pulls[-1] == ["reg.example:5000"] and runtime.started == ["app-1"]

"""The registry helper started inside a throwaway network namespace through an argv prefix."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.sandbox.registry import RegistryError, answers, start_registry

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"shi-reg-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True)


def test_registry_in_a_netns_answers_there_and_stops(netns: str) -> None:
    prefix = ["nsenter", f"--net=/run/netns/{netns}"]
    root = Path(tempfile.mkdtemp(prefix="shi-registry-"))
    try:
        registry = start_registry(root, "127.0.0.1:5000", prefix=prefix)
        try:
            assert answers(registry.addr, prefix)
        finally:
            registry.stop()
        assert not answers(registry.addr, prefix)
        with pytest.raises(ProcessLookupError):
            os.kill(registry.pid, 0)
    finally:
        shutil.rmtree(root)


def test_a_registry_that_cannot_start_is_a_one_line_error(netns: str) -> None:
    root = Path(tempfile.mkdtemp(prefix="shi-registry-"))
    try:
        with pytest.raises(RegistryError, match=r"registry on 10\.255\.0\.1:5000 exited"):
            start_registry(root, "10.255.0.1:5000", prefix=["nsenter", f"--net=/run/netns/{netns}"])
    finally:
        shutil.rmtree(root)

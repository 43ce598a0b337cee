"""The test images really run: each pulled, mounted as a writable overlay and run with chroot
(the runtime's own tests run them under runc); the example app serves its hostname page."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.agent.images import ImageStore, PulledImage
from shoal.sandbox.registry import stop_pid

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


@pytest.fixture
def store(registry: str) -> Iterator[ImageStore]:
    root = Path(tempfile.mkdtemp(prefix="shi-store-"))
    try:
        yield ImageStore(root, insecure=[registry])
    finally:
        shutil.rmtree(root)


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"shi-app-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True)


@contextlib.contextmanager
def rootfs(image: PulledImage, work: Path) -> Iterator[Path]:
    """A writable overlay of the image (upper/work dirs under ``work``), unmounted at the end."""
    merged, upper, scratch = work / "merged", work / "upper", work / "work"
    for path in (merged, upper, scratch):
        path.mkdir()
    lower = ":".join(str(path) for path in reversed(image.layer_dirs))
    options = f"lowerdir={lower},upperdir={upper},workdir={scratch}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(merged)], check=True)
    try:
        yield merged
    finally:
        subprocess.run(["umount", str(merged)], check=True)


def image_argv(image: PulledImage) -> list[str]:
    config = image.config.get("config", {})
    return [*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])]


def test_exit3_image_exits_3(store: ImageStore, test_images: dict[str, str]) -> None:
    image = store.pull(test_images["exit3"])
    with rootfs(image, store.root) as root:
        proc = subprocess.run(
            ["chroot", str(root), *image_argv(image)], check=False, capture_output=True, text=True
        )
    assert (proc.returncode, proc.stdout) == (3, "failing\n")


def test_user_image_resolves_its_named_user(store: ImageStore, test_images: dict[str, str]) -> None:
    image = store.pull(test_images["user"])
    with rootfs(image, store.root) as root:
        proc = subprocess.run(
            ["chroot", "--userspec=1000:1000", str(root), *image_argv(image)],
            check=False,
            capture_output=True,
            text=True,
        )
    assert proc.stdout.startswith("uid=1000(app) gid=1000(app)")


def test_example_app_serves_a_page_naming_its_hostname(
    store: ImageStore, test_images: dict[str, str], netns: str
) -> None:
    image = store.pull(test_images["httpd"])
    enter = ["nsenter", f"--net=/run/netns/{netns}"]
    with rootfs(image, store.root) as root:
        argv = [
            *enter,
            "unshare",
            "--uts",
            "chroot",
            str(root),
            "/bin/sh",
            "-c",
            "hostname shi-web && exec serve",
        ]
        server = subprocess.Popen(argv, start_new_session=True, env={"PATH": "/bin:/usr/bin:/usr/sbin"})
        try:
            page = fetch([*enter, "/bin/busybox", "wget", "-q", "-O", "-", "http://127.0.0.1:8080/"])
        finally:
            stop_pid(server.pid)
    assert page == "<h1>hello from shi-web</h1>\n"


def fetch(argv: list[str], timeout_s: float = 10) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        proc = subprocess.run(argv, check=False, capture_output=True, text=True)
        if proc.returncode == 0 or time.monotonic() > deadline:
            return proc.stdout
        time.sleep(0.1)

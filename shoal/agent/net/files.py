"""The /etc/hosts, /etc/hostname and resolv.conf a container gets (agent/net).

Pure renderers plus one writer; the runtime bind-mounts the written files into the container.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ContainerFiles:
    hosts: Path
    hostname: Path
    resolv_conf: Path


def render_hosts(hostname: str, ip: str) -> str:
    return f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{ip}\t{hostname}\n"


def render_resolv_conf(nameserver: str, domain: str) -> str:
    return f"nameserver {nameserver}\nsearch {domain}\noptions ndots:1\n"


def write_container_files(
    directory: Path, hostname: str, ip: str, nameserver: str, domain: str
) -> ContainerFiles:
    directory.mkdir(parents=True, exist_ok=True)
    files = ContainerFiles(directory / "hosts", directory / "hostname", directory / "resolv.conf")
    _write(files.hosts, render_hosts(hostname, ip))
    _write(files.hostname, hostname + "\n")
    _write(files.resolv_conf, render_resolv_conf(nameserver, domain))
    return files


def _write(path: Path, text: str) -> None:
    if path.exists() and path.read_text() == text:
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)

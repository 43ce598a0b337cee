"""The /etc/hosts, /etc/hostname and resolv.conf a container gets (agent/net).

Pure renderers plus one writer; the runtime bind-mounts the written files into the container.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ContainerFiles:
    hosts: Path
    hostname: Path
    resolv_conf: Path


def render_hosts(hostname: str, ip: str, extra: Mapping[str, str] | None = None) -> str:
    """localhost, the container's own name, then Compose `extra_hosts` (name -> address)."""
    text = f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{ip}\t{hostname}\n"
    return text + "".join(f"{addr}\t{name}\n" for name, addr in (extra or {}).items())


def render_resolv_conf(nameserver: str, domain: str, search: Sequence[str] = (), project: str = "") -> str:
    """The node's DNS server; the project's domain (`db` is the project's db), the cluster domain,
    then Compose `dns_search`, as search list."""
    mine = [f"{project}.{domain}"] if project else []
    return f"nameserver {nameserver}\nsearch {' '.join([*mine, domain, *search])}\noptions ndots:1\n"


def write_container_files(
    directory: Path,
    hostname: str,
    ip: str,
    nameserver: str,
    domain: str,
    *,
    extra_hosts: Mapping[str, str] | None = None,
    search: Sequence[str] = (),
    project: str = "",
) -> ContainerFiles:
    directory.mkdir(parents=True, exist_ok=True)
    files = ContainerFiles(directory / "hosts", directory / "hostname", directory / "resolv.conf")
    _write(files.hosts, render_hosts(hostname, ip, extra_hosts))
    _write(files.hostname, hostname + "\n")
    _write(files.resolv_conf, render_resolv_conf(nameserver, domain, search, project))
    return files


def _write(path: Path, text: str) -> None:
    if path.exists() and path.read_text() == text:
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)

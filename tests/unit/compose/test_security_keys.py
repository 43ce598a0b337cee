"""Security keys checked at parse time, with one line each, even where the policy grants them;
and the keys carried into the ContainerSpec the node renders."""

from __future__ import annotations

import textwrap

import pytest

from shoal.model.compose import parse_compose
from shoal.model.compose_types import ComposeError


def parse(service: str) -> object:
    text = "services:\n  web:\n    image: app:1\n" + textwrap.indent(textwrap.dedent(service), "    ")
    return parse_compose(text, "p")  # no policy: keys checked for their form only


@pytest.mark.parametrize(
    ("service", "message"),
    [
        ("sysctls: {kernel.panic: '1'}", "kernel.panic: not a namespaced sysctl"),
        ("sysctls: [vm.swappiness=1]", "vm.swappiness: not a namespaced sysctl"),
        ("network_mode: host\nsysctls: {net.core.somaxconn: '1'}", "not with network_mode: host"),
        ("userns_mode: 'private'", "only host"),
        ("pid: 'container:db'", "only host"),
        ("cap_add: [SYS_EVERYTHING]", "unknown capability 'SYS_EVERYTHING'"),
        ("cap_drop: ['']", "unknown capability"),
        ("devices: ['dev/fuse']", "use /dev/host"),
        ("devices: ['/dev/fuse:/dev/fuse:rwx']", "use /dev/host"),
        ("security_opt: ['label=disable', 'bogus']", "'bogus': use seccomp="),
    ],
)
def test_refused_with_one_line(service: str, message: str) -> None:
    with pytest.raises(ComposeError) as exc:
        parse(service)
    assert any(message in line for line in exc.value.errors), exc.value.errors


def test_accepted_forms() -> None:
    spec = parse("""\
        cap_add: [sys_admin, CAP_NET_ADMIN]
        cap_drop: [ALL]
        devices: ['/dev/fuse', '/dev/zero:/dev/z:r']
        sysctls: {net.core.somaxconn: '1', kernel.shmmax: '1', fs.mqueue.msg_max: '2', kernel.sem: '1 2'}
        security_opt: ['no-new-privileges:true', 'seccomp=unconfined']
        userns_mode: host
        pid: host
    """)
    assert spec is not None

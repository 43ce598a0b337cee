"""render.oci_security and render.seccomp: each security key as Docker renders it, and the
default and privileged config.json against golden documents (tests/unit/data/oci/)."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

import pytest

from shoal.agent.render import oci, seccomp
from shoal.agent.render.oci_security import HostDevice, SecurityError, SecurityInputs, capabilities
from shoal.model.container import ContainerSpec, Mount, Security
from shoal.model.security_keys import DEFAULT_CAPABILITIES, parse_device

DATA = Path(__file__).parent.parent / "data" / "oci"
IMAGE = {"config": {"Cmd": ["sh"]}}
ZERO = HostDevice("/dev/zero", "c", 1, 5, 0o666)
DEFAULTS = set(DEFAULT_CAPABILITIES)
NODE = SecurityInputs(devices={"/dev/zero": ZERO}, host_devices=(ZERO,), machine="x86_64")


def render(**security: Any) -> dict[str, Any]:
    spec = ContainerSpec(id="c1", image="img", security=Security(**security))
    inputs = oci.BundleInputs(rootfs="/b/c1/rootfs", cgroups_path="/shoal/c1", security=NODE)
    return oci.render_config(spec, IMAGE, inputs)


def names(doc: dict[str, Any], action: str = "SCMP_ACT_ALLOW") -> set[str]:
    return {n for r in doc["linux"]["seccomp"]["syscalls"] if r["action"] == action and "args" not in r
            for n in r["names"]}  # fmt: skip


@pytest.mark.parametrize(("name", "keys"), [("default", {}), ("privileged", {"privileged": True})])
def test_golden(name: str, keys: dict[str, Any]) -> None:
    golden = DATA / f"{name}.json"
    doc = render(**keys)
    if os.environ.get("SHOAL_REGOLD"):
        golden.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    assert doc == json.loads(golden.read_text())


def test_default_has_dockers_filter_for_the_arch() -> None:
    doc = render()
    sc = doc["linux"]["seccomp"]
    assert sc["defaultAction"] == "SCMP_ACT_ERRNO" and sc["defaultErrnoRet"] == 1
    assert sc["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    allowed = names(doc)
    assert {"read", "arch_prctl", "modify_ldt"} <= allowed  # amd64 rules in
    assert not {"unshare", "mount", "setns", "keyctl", "ptrace", "bpf", "arm_fadvise64_64"} & allowed
    assert doc["process"]["noNewPrivileges"] is False
    arm = seccomp.render(seccomp.default_profile(), DEFAULT_CAPABILITIES, machine="aarch64")
    arm_names = {n for r in arm["syscalls"] for n in r["names"]}
    assert "arm_fadvise64_64" in arm_names and "arch_prctl" not in arm_names


def test_cap_add_opens_the_conditional_rules() -> None:
    admin = names(render(cap_add=["sys_admin"]))
    assert {"unshare", "mount", "setns", "clone"} <= admin and "keyctl" not in admin
    assert "ptrace" in names(render(cap_add=["CAP_SYS_PTRACE"]))
    clone_rules = [r for r in render()["linux"]["seccomp"]["syscalls"] if r["names"] == ["clone"]]
    assert clone_rules[0]["args"][0]["op"] == "SCMP_CMP_MASKED_EQ"  # no CLONE_NEW* without SYS_ADMIN


@pytest.mark.parametrize(
    ("add", "drop", "expected"),
    [
        (["NET_ADMIN"], [], set(DEFAULT_CAPABILITIES) | {"CAP_NET_ADMIN"}),
        (["net_admin"], ["net_raw", "MKNOD"], DEFAULTS - {"CAP_NET_RAW", "CAP_MKNOD"} | {"CAP_NET_ADMIN"}),
        ([], ["ALL"], set()),
        (["CHOWN"], ["all"], {"CAP_CHOWN"}),
        (["ALL"], ["SYS_ADMIN"], None),
    ],
)  # fmt: skip
def test_cap_add_and_drop(add: list[str], drop: list[str], expected: set[str] | None) -> None:
    caps = set(capabilities(Security(cap_add=add, cap_drop=drop)))
    if expected is None:
        assert "CAP_SYS_ADMIN" not in caps and "CAP_BPF" in caps and len(caps) == 40
    else:
        assert caps == expected


def test_unknown_capability_is_one_line() -> None:
    with pytest.raises(SecurityError, match="unknown capability 'SYS_EVERYTHING'"):
        capabilities(Security(cap_add=["SYS_EVERYTHING"]))


def test_privileged() -> None:
    doc = render(privileged=True)
    assert "seccomp" not in doc["linux"]
    assert len(doc["process"]["capabilities"]["bounding"]) == 41
    assert doc["linux"]["maskedPaths"] == [] and doc["linux"]["readonlyPaths"] == []
    assert {"allow": True, "access": "rwm"} in doc["linux"]["resources"]["devices"]
    sys_mount = next(m for m in doc["mounts"] if m["destination"] == "/sys")
    assert "ro" not in sys_mount["options"]
    assert doc["linux"]["devices"][0]["path"] == "/dev/zero"


def test_unconfined_custom_and_no_new_privileges() -> None:
    assert "seccomp" not in render(security_opt=["seccomp=unconfined"])["linux"]
    assert render(security_opt=["no-new-privileges"])["process"]["noNewPrivileges"] is True
    assert render(security_opt=["no-new-privileges:false"])["process"]["noNewPrivileges"] is False
    own = json.dumps(
        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["chmod"], "action": "SCMP_ACT_ERRNO"}]}
    )
    doc = render(security_opt=["seccomp=./p.json"], seccomp_profile=own)
    assert doc["linux"]["seccomp"]["syscalls"] == [{"names": ["chmod"], "action": "SCMP_ACT_ERRNO"}]
    with pytest.raises(SecurityError, match="not shipped"):
        render(security_opt=["seccomp=./p.json"])
    with pytest.raises(Exception, match="not JSON"):
        render(security_opt=["seccomp=./p.json"], seccomp_profile="{nope")


def test_devices_sysctls_namespaces() -> None:
    doc = render(devices=["/dev/zero:/dev/z:r"], sysctls={"kernel.msgmax": "1024"}, pid="host",
                 network_mode="host")  # fmt: skip
    assert doc["linux"]["devices"] == [{"path": "/dev/z", "type": "c", "major": 1, "minor": 5,
                                        "fileMode": 0o666, "uid": 0, "gid": 0}]  # fmt: skip
    assert {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "r"} in doc["linux"]["resources"][
        "devices"
    ]
    assert {ns["type"] for ns in doc["linux"]["namespaces"]} == {"ipc", "uts", "mount"}
    assert render(sysctls={"kernel.shmmax": "1"})["linux"]["sysctl"] == {"kernel.shmmax": "1"}
    with pytest.raises(SecurityError, match="not namespaced"):
        render(sysctls={"kernel.panic": "1"})
    with pytest.raises(SecurityError, match="not a device node"):
        render(devices=["/dev/sda"])


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("/dev/fuse", ("/dev/fuse", "/dev/fuse", "rwm")), ("/dev/a:/dev/b", ("/dev/a", "/dev/b", "rwm")),
     ("/dev/a:/dev/b:r", ("/dev/a", "/dev/b", "r")), ("/dev/a:rw", ("/dev/a", "/dev/a", "rw"))],
)  # fmt: skip
def test_parse_device(text: str, parsed: tuple[str, str, str]) -> None:
    assert parse_device(text) == parsed


@pytest.mark.parametrize("bad", ["dev/a", "/dev/a:/dev/b:rwx", "/dev/a:b:c:d", "/dev/a:/dev/b:"])
def test_parse_device_refuses(bad: str) -> None:
    with pytest.raises(SecurityError, match="use /dev/host"):
        parse_device(bad)


def test_pids_and_tmpfs_caps() -> None:
    spec = ContainerSpec(id="c1", image="i", mounts=[Mount(kind="tmpfs", target="/t"),
                         Mount(kind="tmpfs", target="/u", size_bytes=8 << 30)])  # fmt: skip
    inputs = oci.BundleInputs(rootfs="/r", cgroups_path="/c", pids_limit=100, tmpfs_max_bytes=1 << 20,
                              security=NODE)  # fmt: skip
    doc = oci.render_config(spec, IMAGE, inputs)
    assert doc["linux"]["resources"]["pids"] == {"limit": 100}
    sizes = [o for m in doc["mounts"] if m["type"] == "tmpfs" for o in m["options"] if o.startswith("size=")]
    assert sizes.count("size=1048576") >= 3  # /dev, /dev/shm and both tmpfs capped


@pytest.mark.parametrize("runs", [True, False])
def test_x32_rules_only_where_the_kernel_runs_x32(monkeypatch: pytest.MonkeyPatch, runs: bool) -> None:
    if seccomp.node_arch() != "x86_64":
        pytest.skip("the x32 ABI is amd64's")
    monkeypatch.setattr(seccomp, "x32_runs", lambda: runs)
    arches = seccomp.render(seccomp.default_profile(), DEFAULT_CAPABILITIES)["architectures"]
    assert arches == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", *(["SCMP_ARCH_X32"] if runs else [])]


def test_the_x32_probe_agrees_with_the_kernels_config() -> None:
    config = Path("/proc/config.gz")
    if seccomp.node_arch() != "x86_64" or not config.exists():
        pytest.skip("no amd64 kernel config to compare with")
    built = "CONFIG_X86_X32_ABI=y" in gzip.decompress(config.read_bytes()).decode()
    assert seccomp.x32_runs() is built or (built and "syscall.x32=n" in Path("/proc/cmdline").read_text())

"""render.oci: runc's base spec merged with the image config and the container spec."""

from __future__ import annotations

from typing import Any

import pytest

from shoal.agent.render import oci
from shoal.model import security_keys as oci_security
from shoal.model.container import ContainerSpec, Mount, Resources, Ulimit

PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:App:/home/app:/bin/sh\nbroken line\n"
GROUP = "root:x:0:\napp:x:1001:\nstaff:x:50:app,other\nwheel:x:10:root\n"
IMAGE: dict[str, Any] = {
    "config": {
        "Entrypoint": ["/bin/entry"],
        "Cmd": ["serve", "--port", "80"],
        "Env": ["PATH=/opt/bin:/bin", "A=image", "B=image"],
        "WorkingDir": "/srv",
        "User": "app",
    }
}


def inputs(**kw: Any) -> oci.BundleInputs:
    base: dict[str, Any] = {
        "rootfs": "/b/c1/rootfs",
        "cgroups_path": "/shoal-n1/c1",
        "passwd": PASSWD,
        "group": GROUP,
    }
    return oci.BundleInputs(**{**base, **kw})


def render(image: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return oci.render_config(
        ContainerSpec(id="c1", image="img", **spec), IMAGE if image is None else image, inputs()
    )


def env_of(doc: dict[str, Any]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in doc["process"]["env"])


def test_base_is_runc_spec() -> None:
    base = oci.base_spec()
    assert base["ociVersion"] == "1.0.2-dev"
    assert {ns["type"] for ns in base["linux"]["namespaces"]} == {"pid", "network", "ipc", "uts", "mount"}
    assert oci.base_spec() is not base  # a fresh copy every time


def test_image_config_becomes_process() -> None:
    p = render()["process"]
    assert p["args"] == ["/bin/entry", "serve", "--port", "80"]
    assert p["cwd"] == "/srv"
    assert p["user"] == {"uid": 1000, "gid": 1001, "additionalGids": [1001, 50]}
    assert p["terminal"] is False
    env = env_of(render())
    assert env["PATH"] == "/opt/bin:/bin" and env["A"] == "image" and env["HOME"] == "/home/app"


def test_command_replaces_cmd_only() -> None:
    assert render(command=["run"])["process"]["args"] == ["/bin/entry", "run"]


def test_entrypoint_replaces_entrypoint_and_drops_cmd() -> None:
    assert render(entrypoint=["/bin/sh", "-c"])["process"]["args"] == ["/bin/sh", "-c"]
    assert render(entrypoint=["/bin/sh"], command=["x"])["process"]["args"] == ["/bin/sh", "x"]
    assert render(entrypoint=[], command=["echo"])["process"]["args"] == ["echo"]


def test_no_command_is_an_error() -> None:
    with pytest.raises(oci.OciError, match="no command"):
        render(image={"config": {}})


def test_env_overrides_and_defaults() -> None:
    env = env_of(render(env={"B": "spec", "C": "spec"}))
    assert (env["A"], env["B"], env["C"]) == ("image", "spec", "spec")
    bare = env_of(render(image={"config": {"Cmd": ["x"]}}))
    assert bare["PATH"] == oci.DEFAULT_PATH and bare["HOME"] == "/root"


def test_working_dir_and_user_overrides() -> None:
    p = render(working_dir="/tmp", user="root")["process"]
    assert p["cwd"] == "/tmp" and p["user"] == {"uid": 0, "gid": 0, "additionalGids": [0, 10]}


@pytest.mark.parametrize(
    ("text", "uid", "gid", "extra"),
    [
        ("", 0, 0, (0, 10)),
        ("app", 1000, 1001, (1001, 50)),
        ("1000", 1000, 1001, (1001, 50)),
        ("app:staff", 1000, 50, ()),
        ("app:7", 1000, 7, ()),
        ("4242", 4242, 0, ()),
        ("4242:4343", 4242, 4343, ()),
    ],
)
def test_resolve_user(text: str, uid: int, gid: int, extra: tuple[int, ...]) -> None:
    user = oci.resolve_user(text, PASSWD, GROUP)
    assert (user.uid, user.gid, user.additional_gids) == (uid, gid, extra)


def test_unknown_user_or_group_is_an_error() -> None:
    with pytest.raises(oci.OciError, match="'nobody' is not in the image's /etc/passwd"):
        oci.resolve_user("nobody", PASSWD, GROUP)
    with pytest.raises(oci.OciError, match="'nogroup'"):
        oci.resolve_user("app:nogroup", PASSWD, GROUP)


def test_hostname_root_and_cgroups() -> None:
    doc = render(hostname="web-1")
    assert doc["hostname"] == "web-1"
    assert render()["hostname"] == "c1"
    assert doc["root"] == {"path": "/b/c1/rootfs", "readonly": False}
    assert doc["linux"]["cgroupsPath"] == "/shoal-n1/c1"


def test_cgroups_path_is_per_parent_and_id() -> None:
    assert oci.cgroups_path("/shoal/node-a", "web-1") == "/shoal/node-a/web-1"
    assert oci.cgroups_path("shoal-b/", "web-1") == "/shoal-b/web-1"
    assert oci.cgroups_path("/shoal/node-a", "web-1") != oci.cgroups_path("/shoal/node-b", "web-1")


def test_capabilities_and_no_new_privileges() -> None:
    p = render()["process"]
    assert p["noNewPrivileges"] is False  # Docker's default: su/sudo in images keep working
    assert set(p["capabilities"]["bounding"]) == set(oci_security.DEFAULT_CAPABILITIES)
    assert set(p["capabilities"]) == {"bounding", "effective", "permitted"}
    assert "CAP_SYS_ADMIN" not in p["capabilities"]["effective"]
    assert len(oci_security.DEFAULT_CAPABILITIES) == 14


def test_resources() -> None:
    res = render(resources=Resources(memory_bytes=64 << 20, cpus=1.5, pids=20))["linux"]["resources"]
    assert res["memory"] == {"limit": 64 << 20}
    assert res["cpu"] == {"quota": 150_000, "period": 100_000}
    assert res["pids"] == {"limit": 20}
    assert res["devices"] == [{"allow": False, "access": "rwm"}]  # runc's default kept
    assert set(render()["linux"]["resources"]) == {"devices", "pids"}
    assert render()["linux"]["resources"]["pids"] == {"limit": oci.DEFAULT_PIDS_LIMIT}  # the node default


def test_network_namespace_join_or_private() -> None:
    spec = ContainerSpec(id="c1", image="i", command=["x"])
    joined = oci.render_config(spec, {}, inputs(netns_path="/run/netns/shoal-c1"))
    assert {"type": "network", "path": "/run/netns/shoal-c1"} in joined["linux"]["namespaces"]
    private = oci.render_config(spec, {}, inputs())
    assert {"type": "network"} in private["linux"]["namespaces"]


def test_mounts() -> None:
    mounts = [
        Mount(kind="volume", source="data", target="/data"),
        Mount(kind="bind", source="/srv/static", target="/static", read_only=True),
        Mount(kind="tmpfs", target="/cache", size_bytes=1 << 20),
        Mount(kind="secret", source="db-password", target="/run/secrets/db-password"),
    ]
    spec = ContainerSpec(id="c1", image="i", command=["x"], mounts=mounts)
    extra = inputs(
        volumes={"data": "/var/lib/shoal/volumes/data"},
        secrets_dir="/run/shoal/secrets/c1",
        files={"/etc/resolv.conf": "/b/c1/resolv.conf", "/etc/hosts": "/b/c1/hosts"},
    )
    added = oci.render_config(spec, {}, extra)["mounts"][len(oci.base_spec()["mounts"]) :]
    by_target = {m["destination"]: m for m in added}
    assert by_target["/data"]["source"] == "/var/lib/shoal/volumes/data"
    assert by_target["/data"]["options"] == ["rbind", "rprivate", "rw"]
    assert by_target["/static"]["options"][-1] == "ro"
    assert by_target["/cache"] == {
        "destination": "/cache", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev", "mode=1777", "size=1048576"],
    }  # fmt: skip
    assert by_target["/run/secrets/db-password"]["source"] == "/run/shoal/secrets/c1/db-password"
    assert by_target["/run/secrets/db-password"]["options"][-1] == "ro"
    assert by_target["/etc/resolv.conf"]["source"] == "/b/c1/resolv.conf"
    assert [m["destination"] for m in added][-2:] == ["/etc/hosts", "/etc/resolv.conf"]


@pytest.mark.parametrize(
    ("mount", "message"),
    [
        (Mount(kind="volume", source="nope", target="/d"), "volume 'nope'"),
        (Mount(kind="bind", source="relative/path", target="/d"), "not an absolute path"),
        (Mount(kind="secret", source="s", target="/run/secrets/s"), "needs a secrets directory"),
    ],
)
def test_mount_errors(mount: Mount, message: str) -> None:
    spec = ContainerSpec(id="c1", image="i", command=["x"], mounts=[mount])
    with pytest.raises(oci.OciError, match=message):
        oci.render_config(spec, {}, inputs())


def test_parsers_skip_malformed_lines() -> None:
    assert oci.parse_passwd(PASSWD) == {"root": (0, 0, "/root"), "app": (1000, 1001, "/home/app")}
    assert oci.parse_group("x\nstaff:x:50:a,b\nempty:x:7\n") == {"staff": (50, ["a", "b"]), "empty": (7, [])}


def test_compose_keys_reach_the_runc_config() -> None:
    """read_only, ulimits, shm_size, init, tty: each one changes the document runc gets."""
    plain = render()
    assert plain["root"]["readonly"] is False
    assert not any(m["destination"] == oci.INIT_TARGET for m in plain["mounts"])
    spec = ContainerSpec(
        id="c1", image="img", read_only=True, init=True, tty=True, stdin_open=True, shm_size_bytes=1 << 28,
        ulimits=[Ulimit(name="nofile", soft=20000, hard=40000), Ulimit(name="nproc", soft=64, hard=64)],
    )  # fmt: skip
    doc = oci.render_config(spec, IMAGE, inputs(init_path="/usr/bin/tini-static"))
    assert doc["root"]["readonly"] is True
    limits = {r["type"]: (r["soft"], r["hard"]) for r in doc["process"]["rlimits"]}
    assert limits == {"RLIMIT_NOFILE": (20000, 40000), "RLIMIT_NPROC": (64, 64)}
    shm = next(m for m in doc["mounts"] if m["destination"] == "/dev/shm")
    assert f"size={1 << 28}" in shm["options"] and not [o for o in shm["options"] if o == "size=65536k"]
    assert doc["process"]["args"] == [oci.INIT_TARGET, "--", "/bin/entry", "serve", "--port", "80"]
    init = next(m for m in doc["mounts"] if m["destination"] == oci.INIT_TARGET)
    assert init["source"] == "/usr/bin/tini-static" and "ro" in init["options"]
    assert doc["process"]["terminal"] is False  # a tty is not attached: the log stays lines


def test_init_without_a_node_init_binary_is_refused() -> None:
    with pytest.raises(oci.OciError, match="no init binary"):
        oci.render_config(ContainerSpec(id="c1", image="img", init=True), IMAGE, inputs())


def test_config_mount_is_read_only_from_the_written_file() -> None:
    mount = Mount(kind="config", source="nginx_conf", target="/etc/nginx/nginx.conf", content_b64="eA==")
    spec = ContainerSpec(id="c1", image="img", mounts=[mount])
    doc = oci.render_config(spec, IMAGE, inputs(configs={"/etc/nginx/nginx.conf": "/b/c1/configs/0"}))
    bind = next(m for m in doc["mounts"] if m["destination"] == "/etc/nginx/nginx.conf")
    assert bind["source"] == "/b/c1/configs/0" and "ro" in bind["options"]
    with pytest.raises(oci.OciError, match="not written on the node"):
        oci.render_config(spec, IMAGE, inputs())

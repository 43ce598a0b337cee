"""The OCI runtime config generator: runc's default spec + image config + container spec → config.json.

Pure: the runtime (agent.runtime) gathers the inputs (the image config dict, the image's
/etc/passwd and /etc/group as text, the host paths of volumes, secrets and resolv.conf/hosts) and
writes the returned document into the bundle. Merge order: ``runc spec`` base, then the image
config per the OCI image spec's conversion rules, then the ContainerSpec with Compose semantics.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shoal.agent.render import oci_security
from shoal.agent.render.oci_security import SecurityInputs
from shoal.agent.render.runc_spec import RUNC_SPEC_JSON
from shoal.errors import ShoalError
from shoal.model.container import ContainerSpec, Mount, Resources

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CPU_PERIOD_US = 100_000
DEFAULT_PIDS_LIMIT = 4096  # per container, unless deploy.resources.limits.pids says otherwise
# A tmpfs lives in memory: without a cap each may take half the node's RAM (the kernel's default).
DEFAULT_TMPFS_MAX_BYTES = 256 * 1024 * 1024
INIT_TARGET = "/sbin/docker-init"  # where Docker puts its tini too
Json = dict[str, Any]


class OciError(ShoalError):
    """The image config and container spec cannot make a runnable container."""


@dataclass(frozen=True)
class User:
    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()
    home: str = "/"


@dataclass(frozen=True)
class BundleInputs:
    """Host-side facts the runtime gathered for one container (paths are host paths)."""

    rootfs: str  # the overlay mountpoint: root.path
    cgroups_path: str
    netns_path: str | None = None  # None: a private network namespace (loopback only)
    passwd: str = ""  # the image's /etc/passwd, as text
    group: str = ""  # the image's /etc/group, as text
    volumes: Mapping[str, str] = field(default_factory=dict)  # volume name -> host dir
    secrets_dir: str | None = None  # tmpfs dir holding one file per secret
    files: Mapping[str, str] = field(default_factory=dict)  # target in container -> host file
    configs: Mapping[str, str] = field(default_factory=dict)  # config target -> host file written
    init_path: str | None = None  # host path of a static init (tini), bound in when spec.init
    security: SecurityInputs = field(default_factory=SecurityInputs)
    pids_limit: int = DEFAULT_PIDS_LIMIT  # the node's default; resources.pids overrides it
    tmpfs_max_bytes: int = DEFAULT_TMPFS_MAX_BYTES  # every tmpfs (and /dev/shm) is at most this


def base_spec() -> Json:
    """A fresh copy of runc's default spec."""
    spec: Json = json.loads(RUNC_SPEC_JSON)
    return spec


def render_config(spec: ContainerSpec, image_config: Mapping[str, Any], inputs: BundleInputs) -> Json:
    """The whole config.json for one container."""
    doc = base_spec()
    cfg: Mapping[str, Any] = image_config.get("config") or {}
    user = resolve_user(spec.user or cfg.get("User") or "", inputs.passwd, inputs.group)
    caps = oci_security.capabilities(spec.security, inputs.security.host_capabilities)
    doc["process"] = render_process(doc["process"], spec, cfg, user, caps)
    if spec.init:
        doc["process"]["args"] = [INIT_TARGET, "--", *doc["process"]["args"]]
    doc["root"] = {"path": inputs.rootfs, "readonly": spec.read_only}
    doc["hostname"] = spec.hostname or spec.id[:63]
    shm = min(spec.shm_size_bytes or inputs.tmpfs_max_bytes, inputs.tmpfs_max_bytes)
    base_mounts = [_sized_shm(m, shm) for m in doc["mounts"]]
    base_mounts = oci_security.readonly_sys(base_mounts, spec.security.privileged)
    doc["mounts"] = base_mounts + render_mounts(spec.mounts, inputs) + _init_mount(spec, inputs)
    doc["linux"] = render_linux(doc["linux"], spec.resources, inputs)
    doc["linux"] = oci_security.apply(doc["linux"], spec.security, caps, inputs.security)
    doc["annotations"] = {"io.shoal.id": spec.id, "io.shoal.service": spec.service}
    return doc


def render_process(
    base: Json, spec: ContainerSpec, cfg: Mapping[str, Any], user: User, caps: Sequence[str]
) -> Json:
    """process: args, env, cwd, user, capabilities, noNewPrivileges."""
    process = copy.deepcopy(base)
    process["terminal"] = False  # Compose tty/stdin_open: no terminal is attached; output goes to the log
    process["args"] = command_line(spec, cfg)
    process["env"] = environment(cfg.get("Env") or [], spec.env, user)
    process["cwd"] = spec.working_dir or cfg.get("WorkingDir") or "/"
    process["user"] = user_entry(user)
    # Docker leaves inheritable and ambient empty: a non-root user gets no capabilities.
    process["capabilities"] = {k: list(caps) for k in ("bounding", "effective", "permitted")}
    process["noNewPrivileges"] = oci_security.no_new_privileges(spec.security)
    process["rlimits"] = rlimits(base.get("rlimits") or [], spec)
    return process


def rlimits(base: Sequence[Json], spec: ContainerSpec) -> list[Json]:
    """runc's defaults with the Compose ``ulimits`` on top (``nofile`` -> RLIMIT_NOFILE)."""
    out = {r["type"]: dict(r) for r in base}
    for u in spec.ulimits:
        kind = "RLIMIT_" + u.name.upper()
        out[kind] = {"type": kind, "soft": u.soft, "hard": u.hard}
    return list(out.values())


def _sized_shm(mount: Json, size: int | None) -> Json:
    if mount["destination"] != "/dev/shm" or not size:
        return dict(mount)
    options = [o for o in mount.get("options", []) if not o.startswith("size=")]
    return {**mount, "options": [*options, f"size={size}"]}


def _init_mount(spec: ContainerSpec, inputs: BundleInputs) -> list[Json]:
    if not spec.init:
        return []
    if not inputs.init_path:
        raise OciError(f"container {spec.id}: init: true, but this node has no init binary (init_binary)")
    return [_bind(inputs.init_path, INIT_TARGET, read_only=True)]


def command_line(spec: ContainerSpec, cfg: Mapping[str, Any]) -> list[str]:
    """Entrypoint + Cmd with Compose overrides: a new entrypoint also drops the image's Cmd."""
    entrypoint = list(cfg.get("Entrypoint") or [])
    cmd = list(cfg.get("Cmd") or [])
    if spec.entrypoint is not None:
        entrypoint, cmd = list(spec.entrypoint), []
    if spec.command is not None:
        cmd = list(spec.command)
    args = entrypoint + cmd
    if not args:
        raise OciError(f"container {spec.id}: no command (the image has no Entrypoint or Cmd)")
    return args


def environment(image_env: Sequence[str], overrides: Mapping[str, str], user: User) -> list[str]:
    """Image Env, then the spec's env on top; PATH and HOME filled in as Docker does."""
    env: dict[str, str] = {"PATH": DEFAULT_PATH}
    for item in image_env:
        key, _, value = item.partition("=")
        env[key] = value
    env.setdefault("HOME", user.home)
    env.update(overrides)
    return [f"{k}={v}" for k, v in env.items()]


def user_entry(user: User) -> Json:
    entry: Json = {"uid": user.uid, "gid": user.gid}
    if user.additional_gids:
        entry["additionalGids"] = list(user.additional_gids)
    return entry


def resolve_user(text: str, passwd: str, group: str) -> User:
    """``user``, ``uid``, ``user:group``, ``uid:gid`` resolved through the image's files."""
    name, _, grp = (text or "0").partition(":")
    users = parse_passwd(passwd)
    user = _lookup_user(name, users, default_gid=0)
    groups = parse_group(group)
    if grp:
        return User(user.uid, _lookup_group(grp, groups), (), user.home)
    return User(user.uid, user.gid, _supplementary(name, user, users, groups), user.home)


def _lookup_user(name: str, users: Mapping[str, tuple[int, int, str]], default_gid: int) -> User:
    if name in users:
        uid, gid, home = users[name]
        return User(uid, gid, (), home)
    if name.isdigit():
        for uid, gid, home in users.values():
            if uid == int(name):
                return User(uid, gid, (), home)
        return User(int(name), default_gid)
    raise OciError(f"user {name!r} is not in the image's /etc/passwd")


def _lookup_group(name: str, groups: Mapping[str, tuple[int, list[str]]]) -> int:
    if name in groups:
        return groups[name][0]
    if name.isdigit():
        return int(name)
    raise OciError(f"group {name!r} is not in the image's /etc/group")


def _supplementary(
    name: str,
    user: User,
    users: Mapping[str, tuple[int, int, str]],
    groups: Mapping[str, tuple[int, list[str]]],
) -> tuple[int, ...]:
    names = {n for n, (uid, _, _) in users.items() if uid == user.uid} | {name}
    gids = sorted({gid for gid, members in groups.values() if names & set(members)} - {user.gid})
    return (user.gid, *gids) if gids else ()


def parse_passwd(text: str) -> dict[str, tuple[int, int, str]]:
    """name -> (uid, gid, home) from /etc/passwd text; malformed lines are skipped."""
    users: dict[str, tuple[int, int, str]] = {}
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 6 and parts[2].isdigit() and parts[3].isdigit():
            users.setdefault(parts[0], (int(parts[2]), int(parts[3]), parts[5] or "/"))
    return users


def parse_group(text: str) -> dict[str, tuple[int, list[str]]]:
    """name -> (gid, members) from /etc/group text; malformed lines are skipped."""
    groups: dict[str, tuple[int, list[str]]] = {}
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 3 and parts[2].isdigit():
            members = [m for m in (parts[3] if len(parts) > 3 else "").split(",") if m]
            groups.setdefault(parts[0], (int(parts[2]), members))
    return groups


def render_mounts(mounts: Sequence[Mount], inputs: BundleInputs) -> list[Json]:
    """The spec's volumes, binds, tmpfs and secrets, then the runtime's files (resolv.conf, hosts)."""
    out = [render_mount(m, inputs) for m in mounts]
    out += [_bind(host, target, read_only=False) for target, host in sorted(inputs.files.items())]
    return out


def render_mount(mount: Mount, inputs: BundleInputs) -> Json:
    if mount.kind == "tmpfs":
        options = ["nosuid", "nodev", "mode=1777"]
        size = min(mount.size_bytes or inputs.tmpfs_max_bytes, inputs.tmpfs_max_bytes)
        options.append(f"size={size}")
        return {"destination": mount.target, "type": "tmpfs", "source": "tmpfs", "options": options}
    read_only = mount.read_only or mount.kind in ("secret", "config")
    return _bind(_mount_source(mount, inputs), mount.target, read_only)


def _mount_source(mount: Mount, inputs: BundleInputs) -> str:
    if mount.kind == "volume":
        if mount.source not in inputs.volumes:
            raise OciError(f"volume {mount.source!r} for {mount.target} has no host directory")
        return inputs.volumes[mount.source]
    if mount.kind == "secret":
        if not inputs.secrets_dir:
            raise OciError(f"secret {mount.source!r} needs a secrets directory")
        return f"{inputs.secrets_dir.rstrip('/')}/{mount.source}"
    if mount.kind == "config":
        if mount.target not in inputs.configs:
            raise OciError(f"config {mount.source!r} for {mount.target} was not written on the node")
        return inputs.configs[mount.target]
    if not mount.source.startswith("/"):
        raise OciError(f"bind mount source {mount.source!r} for {mount.target} is not an absolute path")
    return mount.source


def _bind(source: str, target: str, read_only: bool) -> Json:
    options = ["rbind", "rprivate", "ro" if read_only else "rw"]
    return {"destination": target, "type": "bind", "source": source, "options": options}


def render_linux(base: Json, resources: Resources, inputs: BundleInputs) -> Json:
    """linux: resources, cgroupsPath, the network namespace to join."""
    linux = copy.deepcopy(base)
    linux["resources"] = {**linux.get("resources", {}), **render_resources(resources, inputs.pids_limit)}
    linux["cgroupsPath"] = inputs.cgroups_path
    linux["namespaces"] = [_namespace(ns, inputs.netns_path) for ns in linux["namespaces"]]
    return linux


def _namespace(ns: Json, netns_path: str | None) -> Json:
    if ns["type"] == "network" and netns_path:
        return {"type": "network", "path": netns_path}
    return dict(ns)


def render_resources(resources: Resources, default_pids: int = DEFAULT_PIDS_LIMIT) -> Json:
    out: Json = {}
    if resources.memory_bytes:
        out["memory"] = {"limit": resources.memory_bytes}
    if resources.cpus:
        out["cpu"] = {"quota": int(resources.cpus * CPU_PERIOD_US), "period": CPU_PERIOD_US}
    out["pids"] = {"limit": resources.pids or default_pids}
    return out


def cgroups_path(parent: str, container_id: str) -> str:
    """``/<parent>/<id>``: the parent is per agent (configuration), so two agents never collide."""
    return "/" + "/".join(p for p in (*parent.split("/"), container_id) if p)

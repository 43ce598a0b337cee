"""What the CLI makes of a Compose file before sending it: the project name, interpolation, `.env`,
`extends` from other files, profiles, `env_file`, and every local file the document names.

The first step of `shoal deploy` (shoal.cli.deploy), as `docker compose` does it: the result is
the interpolated document (the server stores it), the files it names (configs, secrets, binds of
a single file), and the spec checked here first, so that errors name the lines of the user's
own file. Pure: files are read through the `Disk` it is given.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from io import StringIO
from typing import Any

from ruamel.yaml import YAML

from shoal.model import compose_forms as forms
from shoal.model.compose_build import build_from_tree
from shoal.model.compose_dotenv import DotenvError, parse_dotenv
from shoal.model.compose_errors import Problems
from shoal.model.compose_extends import resolve_extends
from shoal.model.compose_interp import Expander, interpolate, unset_warnings
from shoal.model.compose_types import ComposeError, DeploySpec
from shoal.model.compose_yaml import Loc, load

MAX_FILE_BYTES = 512 * 1024  # one config, secret or bound file
MAX_TOTAL_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Disk:
    """Reads paths relative to the Compose file's directory; None when absent, IsADirectoryError
    for a directory."""

    read: Callable[[str], bytes | None]
    is_dir: Callable[[str], bool]


@dataclass(frozen=True)
class Options:
    shell: Mapping[str, str]  # the CLI's environment
    project: str | None = None  # -p
    env_file: str | None = None  # --env-file (replaces .env)
    profiles: Sequence[str] = ()
    dir_name: str = ""  # the Compose file's directory name: the last resort for the project name


@dataclass
class Prepared:
    text: str  # the interpolated document, as sent and stored
    project: str
    spec: DeploySpec
    files: dict[str, bytes] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    inactive: list[str] = field(default_factory=list)  # services left out by their profiles


def prepare(text: str, disk: Disk, options: Options) -> Prepared:
    root = load(text)
    if not isinstance(root, dict):
        raise ComposeError("the deploy file must be a YAML mapping with a services: key")
    problems = Problems(root)
    env = environment(disk, options)
    expander = Expander(env)
    interpolate(root, expander, problems.add)
    project, project_from = project_name(options, env, root.get("name"))
    resolve_extends(root, problems.add, _loader(disk, expander, problems))
    inactive = apply_profiles(root, active_profiles(options, env), problems)
    _service_env(root, disk, env, problems)
    files = gather_files(root, disk, problems)
    spec = build_from_tree(root, project, files, problems=problems, project_from=project_from)
    return Prepared(dump(root), project, spec, files, unset_warnings(expander.unset), inactive)


def environment(disk: Disk, options: Options) -> dict[str, str]:
    """The interpolation environment: `.env` (or --env-file) under the shell, which wins."""
    path = options.env_file or ".env"
    raw = disk.read(path)
    if raw is None:
        if options.env_file:
            raise ComposeError(f"--env-file {options.env_file}: no such file")
        return dict(options.shell)
    try:
        found = parse_dotenv(raw.decode(errors="replace"), options.shell)
    except DotenvError as bad:
        raise ComposeError(f"{path}: {bad}") from None
    return {**found, **options.shell}


def project_name(options: Options, env: Mapping[str, str], written: Any) -> tuple[str, str]:
    """-p > COMPOSE_PROJECT_NAME > name: > the directory's name, normalised as Compose does; and
    where it came from (what an error about it names)."""
    if options.project:
        return options.project, "-p/--project"
    if env.get("COMPOSE_PROJECT_NAME"):
        return env["COMPOSE_PROJECT_NAME"], "COMPOSE_PROJECT_NAME"
    if isinstance(written, str) and written:
        return written, "name"
    return normalise_name(options.dir_name), "the directory's name"


def normalise_name(name: str) -> str:
    return re.sub(r"^[^a-z0-9]+", "", re.sub(r"[^a-z0-9_-]", "", name.lower()))


def active_profiles(options: Options, env: Mapping[str, str]) -> set[str]:
    written = [p for p in env.get("COMPOSE_PROFILES", "").split(",") if p]
    return {*options.profiles, *written}


def apply_profiles(root: dict[str, Any], active: set[str], problems: Problems) -> list[str]:
    """Leave out the services whose profiles are all inactive (`*` enables every one)."""
    services = root.get("services")
    if not isinstance(services, dict):
        return []
    off = [n for n, s in services.items() if not _enabled(s, active)]
    for name, body in services.items():
        for dep in _dependencies(body):
            if dep in off and name not in off and _required(body, dep):
                problems.add(["services", name, "depends_on"], f'service "{dep}" is disabled by its profiles')
    for name in off:
        del services[name]
    return sorted(str(n) for n in off)


def _enabled(body: Any, active: set[str]) -> bool:
    profiles = body.get("profiles") if isinstance(body, dict) else None
    if not profiles:
        return True
    wanted = [profiles] if isinstance(profiles, str) else list(profiles)
    return "*" in active or bool(active & set(map(str, wanted)))


def _dependencies(body: Any) -> list[str]:
    deps = body.get("depends_on") if isinstance(body, dict) else None
    return [str(d) for d in deps] if isinstance(deps, list | dict) else []


def _required(body: dict[str, Any], dep: str) -> bool:
    how = body["depends_on"].get(dep) if isinstance(body["depends_on"], dict) else None
    return not (isinstance(how, dict) and how.get("required") is False)


def _loader(disk: Disk, expander: Expander, problems: Problems) -> Callable[[str], Any]:
    def load_other(path: str) -> Any:
        raw = disk.read(path)
        if raw is None:
            raise ValueError(f"{path}: no such file")
        other = load(raw.decode(errors="replace"))
        interpolate(other, expander, lambda loc, msg: problems.note(f"{path}: {msg}"))
        return other

    return load_other


def _service_env(root: dict[str, Any], disk: Disk, env: Mapping[str, str], problems: Problems) -> None:
    """`env_file` read into `environment` (whose own keys win); a key with no value takes the
    environment's, or is left out, as Compose does."""
    services = root.get("services")
    for name, body in services.items() if isinstance(services, dict) else []:
        if not isinstance(body, dict):
            continue
        here: Loc = ["services", name]
        from_files = _env_files(body.get("env_file"), disk, env, problems, [*here, "env_file"])
        written = _as_map(body.get("environment"))
        merged = {**from_files, **written}
        resolved = {k: (env.get(k) if v is None else v) for k, v in merged.items()}
        if "env_file" in body or written:
            body["environment"] = _keep_lines(body.get("environment"), resolved)
        body.pop("env_file", None)


def _keep_lines(old: Any, values: dict[str, str | None]) -> Any:
    """The mapping written back where the list or map was (unset keys dropped)."""
    out = {k: v for k, v in values.items() if v is not None}
    return out if out or old is not None else {}


def _as_map(value: Any) -> dict[str, str | None]:
    if isinstance(value, dict):
        return {str(k): (None if v is None else str(forms.scalar_text(v))) for k, v in value.items()}
    if isinstance(value, list):
        pairs = [str(item).partition("=") for item in value]
        return {k: (v if sep else None) for k, sep, v in pairs}
    return {}


def _env_files(
    value: Any, disk: Disk, env: Mapping[str, str], problems: Problems, loc: Loc
) -> dict[str, str | None]:
    entries = [value] if isinstance(value, str | dict) else value if isinstance(value, list) else []
    found: dict[str, str | None] = {}
    for index, entry in enumerate(entries):
        path, required, raw = _env_entry(entry)
        data = disk.read(path) if path else None
        if data is None:
            if required:
                problems.add([*loc, index] if isinstance(value, list) else loc, f"env file {path} not found")
            continue
        try:
            found.update(parse_dotenv(data.decode(errors="replace"), env, raw=raw))
        except DotenvError as bad:
            problems.add([*loc, index] if isinstance(value, list) else loc, f"{path}: {bad}")
    return found


def _env_entry(entry: Any) -> tuple[str, bool, bool]:
    if isinstance(entry, dict):
        return (
            str(entry.get("path", "")),
            entry.get("required", True) is not False,
            entry.get("format") == "raw",
        )
    return str(entry), True, False


def gather_files(root: dict[str, Any], disk: Disk, problems: Problems) -> dict[str, bytes]:
    """The local files the document names: secrets' and configs' `file:`, binds of a file."""
    wanted: list[tuple[Loc, str]] = []
    for section in ("secrets", "configs"):
        items = root.get(section)
        for key, body in items.items() if isinstance(items, dict) else []:
            if isinstance(body, dict) and isinstance(body.get("file"), str):
                wanted.append(([section, key, "file"], body["file"]))
    services = root.get("services")
    for name, body in services.items() if isinstance(services, dict) else []:
        volumes = body.get("volumes") if isinstance(body, dict) else None
        for index, vol in enumerate(volumes if isinstance(volumes, list) else []):
            source = _bind_source(vol)
            if source is not None:
                wanted.append((["services", name, "volumes", index], source))
        opts = body.get("security_opt") if isinstance(body, dict) else None
        for index, opt in enumerate(opts if isinstance(opts, list) else []):
            profile = forms.seccomp_file(opt)
            if profile is not None:
                wanted.append((["services", name, "security_opt", index], profile))
    return _read_all(wanted, disk, problems)


def _bind_source(vol: Any) -> str | None:
    source = (
        vol.split(":")[0] if isinstance(vol, str) else vol.get("source") if isinstance(vol, dict) else None
    )
    return source if isinstance(source, str) and forms.local_path(source) else None


def _read_all(wanted: list[tuple[Loc, str]], disk: Disk, problems: Problems) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for loc, path in wanted:
        if path in files:
            continue
        if disk.is_dir(path):
            problems.add(loc, f"{path} is a directory: only a file can be sent (use a named volume)")
            continue
        data = disk.read(path)
        if data is None:
            problems.add(loc, f"{path}: no such file (a directory cannot be sent: use a named volume)")
        elif len(data) > MAX_FILE_BYTES:
            problems.add(loc, f"{path} is larger than {MAX_FILE_BYTES // 1024} KiB")
        elif data is not None:
            files[path] = data
    if sum(map(len, files.values())) > MAX_TOTAL_BYTES:
        problems.note(f"the files the deploy names add up to more than {MAX_TOTAL_BYTES >> 20} MiB")
    return files


def dump(root: Any) -> str:
    out = StringIO()
    yaml = YAML(typ="rt", pure=True)
    yaml.width = 4096
    yaml.dump(root, out)
    return out.getvalue()

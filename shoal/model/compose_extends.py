"""`extends`: a service built on another one, in the same file or another, merged as Compose does.

Under `shoal.model.compose_source` (the CLI, which can read the other files) and
`compose_build` (the server: same-file only). The extending service is merged in place, so its
own keys keep their lines. Merge rules (Compose's): mappings merge key by key; `command`,
`entrypoint` and `healthcheck.test` are replaced; `environment`, `labels`, `extra_hosts`,
`sysctls`, `depends_on`, `networks` merge as mappings; `volumes` by target; other lists are
joined without repeats. A base from another file has its relative paths made relative to the
extending file. Pure: another file is read through the `Loader` it is given.
"""

from __future__ import annotations

import copy
import posixpath
from collections.abc import Callable
from typing import Any

from shoal.errors import first_line
from shoal.model.compose_yaml import Loc

Loader = Callable[[str], Any]  # a path relative to the document → that file's root mapping
Report = Callable[[Loc, str], None]
REPLACED = {"command", "entrypoint", "test"}
AS_MAPPING = {"environment", "labels", "extra_hosts", "sysctls", "depends_on", "networks", "ulimits"}
MAX_DEPTH = 16


class ExtendsError(ValueError):
    pass


def resolve_extends(root: Any, report: Report, load: Loader | None) -> None:
    """Resolve every service's `extends` in the document `root` (in place)."""
    services = root.get("services") if isinstance(root, dict) else None
    if not isinstance(services, dict):
        return
    for name in list(services):
        try:
            _resolve(services, name, load, [])
        except ExtendsError as bad:
            report(["services", name, "extends"], str(bad))
            body = services.get(name)
            if isinstance(body, dict):
                body.pop("extends", None)  # reported: not again by a later pass


def _resolve(services: dict[str, Any], name: str, load: Loader | None, chain: list[str]) -> Any:
    body = services.get(name)
    if not isinstance(body, dict) or "extends" not in body:
        return body
    if name in chain or len(chain) > MAX_DEPTH:
        raise ExtendsError(f"extends cycle: {' -> '.join([*chain, name])}")
    base = _base(services, body["extends"], load, [*chain, name])
    del body["extends"]
    merge_service(base, body)
    return body


def _base(services: dict[str, Any], ref: Any, load: Loader | None, chain: list[str]) -> dict[str, Any]:
    target, file = (ref, None) if isinstance(ref, str) else _long(ref)
    if file is None:
        if target not in services:
            raise ExtendsError(f'service "{target}" is not in this file')
        found = _resolve(services, target, load, chain)
        return copy.deepcopy(dict(found)) if isinstance(found, dict) else {}
    if load is None:
        raise ExtendsError("extends from another file must be read by the shoal CLI")
    try:
        other = load(file)
    except ValueError as bad:  # not found, not YAML (ComposeError is a ValueError)
        raise ExtendsError(first_line(bad)) from None
    others = other.get("services") if isinstance(other, dict) else None
    if not isinstance(others, dict) or target not in others:
        raise ExtendsError(f'service "{target}" is not in {file}')
    found = _resolve(others, target, _relative(load, file), [])
    return rebase(copy.deepcopy(dict(found)), posixpath.dirname(file))


def _long(ref: Any) -> tuple[str, str | None]:
    if not isinstance(ref, dict) or not isinstance(ref.get("service"), str):
        raise ExtendsError("extends needs service: (and optionally file:)")
    file = ref.get("file")
    if file is not None and not isinstance(file, str):
        raise ExtendsError("extends.file must be a path")
    return ref["service"], file


def _relative(load: Loader, file: str) -> Loader:
    """A loader for paths written in `file` (relative to its own directory)."""
    folder = posixpath.dirname(file)
    return lambda path: load(posixpath.normpath(posixpath.join(folder, path)))


def rebase(body: dict[str, Any], folder: str) -> dict[str, Any]:
    """Relative `env_file` and bind sources of a base from another file, made relative to ours."""
    if not folder:
        return body
    files = body.get("env_file")
    if isinstance(files, str | list):
        body["env_file"] = [_join(folder, f) for f in ([files] if isinstance(files, str) else files)]
    if isinstance(body.get("volumes"), list):
        body["volumes"] = [_rebase_volume(v, folder) for v in body["volumes"]]
    return body


def _join(folder: str, item: Any) -> Any:
    if isinstance(item, dict) and isinstance(item.get("path"), str):
        return {**item, "path": _join(folder, item["path"])}
    if isinstance(item, str) and not item.startswith(("/", "~")):
        return posixpath.normpath(posixpath.join(folder, item))
    return item


def _rebase_volume(volume: Any, folder: str) -> Any:
    if isinstance(volume, str) and volume.startswith("."):
        source, _, rest = volume.partition(":")
        return f"{_join(folder, source)}:{rest}"
    if isinstance(volume, dict) and str(volume.get("source", "")).startswith("."):
        return {**volume, "source": _join(folder, volume["source"])}
    return volume


def merge_service(base: dict[str, Any], body: dict[str, Any]) -> None:
    """Merge `base` under `body` in place: `body`'s own keys win (and keep their lines)."""
    for key, value in base.items():
        body[key] = merge_value(key, value, body[key]) if key in body else value


def merge_value(key: str, base: Any, over: Any) -> Any:
    if key in REPLACED:
        return over
    if key in AS_MAPPING:
        merged = {**_as_mapping(base), **_as_mapping(over)}
        return merged
    if key == "volumes" and isinstance(base, list) and isinstance(over, list):
        return _by_target(base, over)
    if isinstance(base, dict) and isinstance(over, dict):
        merged = dict(base)
        for sub, value in over.items():
            merged[sub] = merge_value(str(sub), base[sub], value) if sub in base else value
        return merged
    if isinstance(base, list) and isinstance(over, list):
        return [*base, *(item for item in over if item not in base)]
    return over


def _as_mapping(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        pairs = [(str(item).partition("=")[0], str(item).partition("=")[2]) for item in value]
        return {k: (v if "=" in str(item) else None) for (k, v), item in zip(pairs, value, strict=True)}
    return {}


def _by_target(base: list[Any], over: list[Any]) -> list[Any]:
    def target(volume: Any) -> Any:
        if isinstance(volume, str):
            parts = volume.split(":")
            return parts[1] if len(parts) > 1 else parts[0]
        return volume.get("target") if isinstance(volume, dict) else volume

    mine = {target(v) for v in over}
    return [*(v for v in base if target(v) not in mine), *over]

"""Compose's short forms, expanded to the long form the schema validates (`"8080:80/udp"` → a dict).

Under `shoal.model.compose_schema`: each function is a pydantic before-validator; a ValueError's
message becomes `services.web.ports[0]: <message> (line 7)`. Pure.
"""

from __future__ import annotations

import math
import re
import shlex
from typing import Any

from shoal.model.durations import brief
from shoal.model.limits import MAX_CPUS

_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")


def command(value: Any) -> Any:
    """A string is split as a shell would (Compose does the same); a list is taken as written."""
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as bad:
            raise ValueError(f"cannot split command: {bad}") from None
    if isinstance(value, list):
        return [scalar_text(v) for v in value]
    return value


def scalar_text(value: Any) -> Any:
    """YAML scalars as Compose reads them into strings: true → "true", 8080 → "8080"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def key_values(value: Any) -> Any:
    """`environment`/`labels`: a list of `K=V` or a map, into a map of strings."""
    if isinstance(value, list):
        return dict(_pair(item) for item in value)
    if isinstance(value, dict):
        return {str(k): _value(str(k), v) for k, v in value.items()}
    return value


def _pair(item: Any) -> tuple[str, str]:
    if not isinstance(item, str) or not item:
        raise ValueError(f"invalid entry {brief(item)} (write KEY=VALUE)")
    key, sep, val = item.partition("=")
    if not sep:
        key = key[:80]
        raise ValueError(f'"{key}" has no value (write {key}=VALUE; variables are not read from the shell)')
    return key, val


def _value(key: str, value: Any) -> str:
    if value is None:
        raise ValueError(f'"{key}" has no value (variables are not read from the shell)')
    text = scalar_text(value)
    if not isinstance(text, str):
        raise ValueError(f'"{key}" must be a string, a number or a boolean')
    return text


def port(value: Any) -> Any:
    """`"80"`, `"8080:80"`, `"127.0.0.1:8080:80/udp"`, `80` → the long form."""
    if isinstance(value, bool):
        raise ValueError(f"invalid port {brief(value)}")
    if isinstance(value, int):
        return {"target": value}
    if not isinstance(value, str):
        return value
    spec, _, protocol = value.partition("/")
    parts = spec.rsplit(":", 2)
    if not all(p.isdigit() for p in parts[-2:]):
        raise ValueError(f'invalid port "{value}"' + (" (ranges are not supported)" if "-" in spec else ""))
    long: dict[str, Any] = {"target": int(parts[-1]), "protocol": protocol or "tcp"}
    if len(parts) >= 2:
        long["published"] = int(parts[-2])
    if len(parts) == 3:
        long["host_ip"] = parts[0].strip("[]")
    return long


def port_number(value: Any) -> Any:
    """A long-form `published` may be a string; ranges are refused."""
    if isinstance(value, str):
        if not value.isdigit():
            raise ValueError(
                f'invalid port "{value}"' + (" (ranges are not supported)" if "-" in value else "")
            )
        return int(value)
    return value


VOLUME_FLAGS = {"ro", "rw", "z", "Z", "cached", "delegated", "consistent", "nocopy"}


def volume(value: Any) -> Any:
    """`name:/path[:flags]` (named volume) or `/host:/path[:flags]`, `./file:/path` (bind) → the long
    form. Flags: `ro`/`rw`, SELinux `z`/`Z` (relabelling: a no-op where SELinux is off, as Docker),
    Docker Desktop's `cached`/`delegated`/`consistent` (no-ops on Linux), `nocopy`."""
    if not isinstance(value, str):
        return value
    parts = value.split(":")
    if len(parts) == 1:
        raise ValueError(f'anonymous volume "{value}" is not supported (name it: NAME:{value})')
    flags = parts[2].split(",") if len(parts) == 3 else []
    if len(parts) > 3 or not set(flags) <= VOLUME_FLAGS:
        raise ValueError(f'invalid volume "{value}" (NAME:/path[:ro] or /host/path:/path[:ro])')
    source, target = parts[0], parts[1]
    kind = "bind" if source.startswith(("/", ".", "~")) else "volume"
    long: dict[str, Any] = {"type": kind, "source": source, "target": target, "read_only": "ro" in flags}
    if "nocopy" in flags:
        long["volume"] = {"nocopy": True}
    return long


def local_path(source: str) -> bool:
    """A bind source on the CLI's machine (`./x`, `../x`, `~/x`): shipped as a config if a file."""
    return source.startswith((".", "~"))


def secret(value: Any) -> Any:
    return {"source": value} if isinstance(value, str) else value


def health_test(value: Any) -> Any:
    """A string is `CMD-SHELL`; a list starts with CMD, CMD-SHELL or NONE."""
    if isinstance(value, str):
        return ["CMD-SHELL", value]
    if not isinstance(value, list):
        return value
    value = [scalar_text(v) for v in value]
    head = value[0] if value else None
    if head == "NONE":
        return ["NONE"]
    if head not in ("CMD", "CMD-SHELL") or len(value) < 2:
        raise ValueError('test must start with "CMD", "CMD-SHELL" or "NONE" and name a command')
    if head == "CMD-SHELL" and len(value) != 2:
        raise ValueError('"CMD-SHELL" takes one shell command string')
    return value


def cpus(value: Any) -> Any:
    """`"0.5"` or 0.5 → 0.5; must be a finite positive number up to `MAX_CPUS`."""
    try:
        number = (
            float(value) if isinstance(value, str | int | float) and not isinstance(value, bool) else None
        )
    except ValueError:
        number = None
    if number is None or not math.isfinite(number) or number <= 0:
        raise ValueError(f"invalid cpus {brief(value)} (a positive number of cores, e.g. 0.5)")
    if number > MAX_CPUS:
        raise ValueError(f"cpus {brief(value)} is more than the maximum {MAX_CPUS:g}")
    return number


def dns_label(name: str) -> bool:
    return re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", name) is not None


def resource_name(name: str) -> bool:
    """Volume and secret names: letters, digits, `_.-`, not starting with a symbol."""
    return _NAME.fullmatch(name) is not None


def seccomp_file(opt: Any) -> str | None:
    """The file of ``seccomp=<file>`` (or Docker's older ``seccomp:<file>``); None otherwise."""
    if not isinstance(opt, str) or not opt.startswith(("seccomp=", "seccomp:")):
        return None
    path = opt[len("seccomp=") :].strip()
    return None if path in ("unconfined", "") else path

"""Short forms of the service keys real files use (`restart`, `depends_on`, `ulimits`, ...), expanded.

Beside `shoal.model.compose_forms`: each function is a pydantic before-validator whose ValueError
becomes `services.web.<key>: <message> (line N)`. Pure.
"""

from __future__ import annotations

import ipaddress
import re
import signal
from typing import Any

from shoal.model.compose_forms import scalar_text
from shoal.model.durations import brief

_RESTART = re.compile(r"(no|always|unless-stopped|on-failure)(?::(\d+))?")
_DEPENDS = {"service_started", "service_healthy", "service_completed_successfully"}


def restart(value: Any) -> Any:
    """`no`, `always`, `unless-stopped`, `on-failure[:N]` → {"name", "max_retries"}."""
    text = "no" if value is False else value
    found = _RESTART.fullmatch(text) if isinstance(text, str) else None
    if found is None or (found.group(2) and found.group(1) != "on-failure"):
        raise ValueError(f"invalid restart {brief(value)} (no, always, on-failure[:N] or unless-stopped)")
    return {"name": found.group(1), "max_retries": int(found.group(2) or 0)}


def depends_on(value: Any) -> Any:
    """A list of names or a map of {condition, required, restart} → the map form."""
    if isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            raise ValueError("entries must be service names")
        return {name: {} for name in value}
    if isinstance(value, dict):
        return {k: ({} if v is None else v) for k, v in value.items()}
    return value


def depends_condition(value: Any) -> Any:
    if value not in _DEPENDS:
        raise ValueError(f"invalid condition {brief(value)} ({', '.join(sorted(_DEPENDS))})")
    return value


def string_list(value: Any) -> Any:
    """A single string or a list of strings (`dns`, `tmpfs`, `profiles`)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [scalar_text(v) for v in value]
    return value


def expose(value: Any) -> Any:
    """`80`, `"8080/udp"`, `"3000-3005"` → "80/tcp"."""
    text = scalar_text(value)
    if not isinstance(text, str) or not re.fullmatch(r"\d+(-\d+)?(/(tcp|udp))?", text):
        raise ValueError(f"invalid port {brief(value)}")
    return text if "/" in text else f"{text}/tcp"


def ulimits(value: Any) -> Any:
    """`nofile: 1024` or `nofile: {soft, hard}` → {soft, hard} each."""
    if not isinstance(value, dict):
        return value
    return {str(k): ({"soft": v, "hard": v} if isinstance(v, int) else v) for k, v in value.items()}


def host_map(value: Any) -> Any:
    """`extra_hosts`: `["host:ip"]`, `["host=ip"]` or `{host: ip}` → {host: ip}."""
    if isinstance(value, dict):
        return {str(k): scalar_text(v) for k, v in value.items()}
    if not isinstance(value, list):
        return value
    out: dict[str, str] = {}
    for item in value:
        text = scalar_text(item)
        host, sep, ip = text.partition("=") if isinstance(text, str) and "=" in text else _colon(text)
        if not sep or not host or not ip:
            raise ValueError(f"invalid host entry {brief(item)} (write HOST:IP)")
        out[host] = ip.strip("[]")
    return out


def dns_servers(value: Any) -> Any:
    """`dns`: one address or a list; each must be an IP address (as Docker requires)."""
    servers = string_list(value)
    if not isinstance(servers, list):
        return servers
    for server in servers:
        try:
            ipaddress.ip_address(server)
        except ValueError:
            raise ValueError(f"invalid DNS server {brief(server)} (write an IP address)") from None
    return servers


def numeric_id(value: Any) -> Any:
    """A secret's `uid`/`gid`: a number, as Compose requires ("1000" or 1000), never a user name."""
    text = scalar_text(value)
    if not isinstance(text, str) or not text.isdigit() or int(text) > 2**32 - 2:
        raise ValueError(f"invalid id {brief(value)} (write a numeric uid or gid)")
    return int(text)


def file_mode(value: Any) -> Any:
    """A secret's or config's `mode`: `0440` is octal as in Docker's YAML (ruamel reads it as 440
    and keeps its width), so are `0o440` and "0440"; permission bits only (no set-id, no sticky)."""
    digits = str(value) if isinstance(value, str) else str(int(value)) if _is_int(value) else ""
    if isinstance(value, str) or len(digits) < (getattr(value, "_width", None) or 0):
        if not re.fullmatch(r"0?o?[0-7]{1,4}", digits):
            raise ValueError(f"invalid mode {brief(value)} (write octal permission bits, 0 to 0777)")
        value = int(digits.replace("o", "") or "0", 8)
    if not _is_int(value) or not 0 <= value <= 0o777:
        raise ValueError(f"invalid mode {brief(value)} (write octal permission bits, 0 to 0777)")
    return int(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _colon(text: Any) -> tuple[str, str, str]:
    if not isinstance(text, str):
        return "", "", ""
    return text.partition(":")


def stop_signal(value: Any) -> Any:
    """`SIGINT`, `INT` or a number → the signal's name."""
    text = scalar_text(value)
    if isinstance(text, str) and text.isdigit():
        try:
            return signal.Signals(int(text)).name
        except ValueError:
            pass
    if isinstance(text, str):
        name = text.upper() if text.upper().startswith("SIG") else "SIG" + text.upper()
        if name in signal.Signals.__members__:
            return name
    raise ValueError(f"unknown signal {brief(value)}")


def service_networks(value: Any) -> Any:
    """A list of network names or a map name → {aliases, ...} or null → the map form."""
    if isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            raise ValueError("entries must be network names")
        return dict.fromkeys(value)
    return value


def config_ref(value: Any) -> Any:
    return {"source": value} if isinstance(value, str) else value


def sysctls(value: Any) -> Any:
    """A list of `k=v` or a map."""
    if isinstance(value, list):
        pairs = [str(v).partition("=") for v in value]
        return {k: v for k, _, v in pairs}
    if isinstance(value, dict):
        return {str(k): str(scalar_text(v)) for k, v in value.items()}
    return value


def labels(value: Any) -> Any:
    """`labels`: as `environment`, but a key with no value is an empty label (Compose does so)."""
    if isinstance(value, list):
        return dict((*str(item).partition("=")[::2],) for item in value if isinstance(item, str | int))
    if isinstance(value, dict):
        return {str(k): "" if v is None else str(scalar_text(v)) for k, v in value.items()}
    return value

"""How the CLI shows things: rich tables for people, JSON for scripts, and the small formatters
(ages, sizes, label lists) the noun modules share. Pure apart from the printing functions.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping, Sequence
from typing import Any

import click
from pydantic import BaseModel
from rich import box
from rich.console import Console
from rich.table import Table

PIPE_WIDTH = 250


def console(stderr: bool = False) -> Console:
    """A console on stdout (or stderr); wide when piped, so rows are not wrapped."""
    probe = Console(stderr=stderr)
    width = None if probe.is_terminal else PIPE_WIDTH
    return Console(stderr=stderr, width=width, highlight=False)


def jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


def print_json(value: Any) -> None:
    click.echo(json.dumps(jsonable(value), indent=2))


def make_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    """A plain, greppable table: upper-case headers, no borders."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column.upper(), overflow="fold")
    for row in rows:
        table.add_row(*(cell(v) for v in row))
    return table


def print_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    console().print(make_table(columns, rows))


def print_fields(fields: Mapping[str, Any]) -> None:
    """`key: value` lines for one thing (inspect)."""
    width = max((len(k) for k in fields), default=0)
    for key, value in fields.items():
        click.echo(f"{key + ':':<{width + 1}} {cell(value)}")


def cell(value: Any) -> str:
    """A table cell: empty for None, yes/no for booleans, k=v lists for mappings."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        return labels_text(value)
    return str(value)


def labels_text(labels: Mapping[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def parse_time(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def age(text: str | None, now: datetime.datetime | None = None) -> str:
    """How long ago an RFC 3339 time was, as `5s`, `3m`, `2h`, `4d` (`-` when unknown)."""
    then = parse_time(text)
    if then is None:
        return "-"
    seconds = max(0, int(((now or datetime.datetime.now(datetime.UTC)) - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def size(num_bytes: int) -> str:
    """Bytes as a short binary size: 512Mi, 2.0Gi."""
    value = float(num_bytes)
    for unit in ("", "Ki", "Mi", "Gi"):
        if value < 1024:
            return f"{value:.0f}{unit}" if unit in ("", "Ki", "Mi") else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}Ti"


def clock(text: str | None) -> str:
    """An RFC 3339 time as local `YYYY-MM-DD HH:MM:SS`."""
    then = parse_time(text)
    return then.astimezone().strftime("%Y-%m-%d %H:%M:%S") if then else (text or "")

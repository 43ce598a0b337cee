"""Output formatting: tables, JSON, `--output` on the root and on commands, one-line errors."""

from __future__ import annotations

import datetime
import json
import socket
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from shoal.cli.main import cli
from shoal.cli.ps import ps_record
from shoal.cli.render import age, cell, make_table, size
from shoal.client.contexts import ContextStore
from shoal.client.models import Task


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("XDG_CONFIG_HOME", "SHOAL_SERVER", "SHOAL_TOKEN", "SHOAL_CACERT", "SHOAL_CONTEXT"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def test_age_and_size() -> None:
    now = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    assert age("2026-01-02T03:04:00+00:00", now) == "5s"
    assert age("2026-01-02T02:04:05+00:00", now) == "1h"
    assert age("2025-12-30T03:04:05", now) == "3d"
    assert age(None, now) == "-" and age("garbage", now) == "-"
    assert (size(512), size(8 << 30), size(3 << 20)) == ("512", "8.0Gi", "3Mi")


def test_cells() -> None:
    assert (cell(None), cell(True), cell(False), cell({"b": 2, "a": 1}), cell(3)) == (
        "",
        "yes",
        "no",
        "a=1,b=2",
        "3",
    )


def test_table_has_upper_case_headers_and_rows() -> None:
    from rich.console import Console

    out = Console(width=200, record=True)
    out.print(make_table(["name", "state"], [["n1", "ready"], ["n2", None]]))
    text = out.export_text()
    assert "NAME" in text and "STATE" in text and "n1" in text and "ready" in text


def test_ps_record_has_the_contract_fields() -> None:
    fields = {"service": "web", "replica": 2, "node": "n1", "state": "running", "health": "healthy"}
    row = Task.model_validate({**fields, "ip": "10.210.1.5", "image": "r/app:1", "extra": 1})
    got = ps_record(row)
    assert {"service", "replica", "node", "state", "health", "ip", "image"} <= set(got)
    assert (got["service"], got["replica"], got["node"], got["ip"]) == ("web", 2, "n1", "10.210.1.5")


def test_output_json_on_root_and_on_command(home: Path) -> None:
    ContextStore().put("one", "https://one:1", "t", None)
    runner = CliRunner()
    on_command = runner.invoke(cli, ["context", "ls", "--output", "json"])
    on_root = runner.invoke(cli, ["-o", "json", "context", "ls"])
    assert on_command.exit_code == 0 and on_root.exit_code == 0
    assert json.loads(on_command.output) == json.loads(on_root.output)
    assert json.loads(on_root.output) == [
        {"name": "one", "current": True, "server": "https://one:1", "ca": None}
    ]
    table = runner.invoke(cli, ["context", "ls"])
    assert "SERVER" in table.output and "https://one:1" in table.output


def test_command_output_overrides_root(home: Path) -> None:
    ContextStore().put("one", "https://one:1", "t", None)
    got = CliRunner().invoke(cli, ["-o", "json", "context", "ls", "-o", "table"])
    assert "SERVER" in got.output


def test_no_server_is_one_line_exit_1(home: Path) -> None:
    got = CliRunner().invoke(cli, ["node", "ls"])
    assert got.exit_code == 1
    assert got.stderr.strip().splitlines() == [
        "error: no server: run `shoal login URL --token TOKEN` or set SHOAL_SERVER"
    ]
    assert "Traceback" not in got.output


def test_connection_refused_is_one_line(home: Path) -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {"SHOAL_SERVER": f"https://127.0.0.1:{port}", "SHOAL_TOKEN": "t"}
    got = CliRunner().invoke(cli, ["ps", "--output", "json"], env=env)
    assert got.exit_code == 1
    lines = got.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"error: cannot reach server at https://127.0.0.1:{port}: "
    )
    assert "refused" in lines[0].lower()


def test_completion_scripts() -> None:
    runner = CliRunner()
    for shell, marker in (("bash", "complete -o nosort -F"), ("zsh", "#compdef shoal"), ("fish", "complete")):
        got = runner.invoke(cli, ["completion", shell])
        assert got.exit_code == 0 and marker in got.output and "_SHOAL_COMPLETE" in got.output
    assert runner.invoke(cli, ["completion", "tcsh"]).exit_code == 2


def test_context_use_unknown_is_one_line(home: Path) -> None:
    got = CliRunner().invoke(cli, ["context", "use", "nope"])
    assert got.exit_code == 1 and got.stderr.startswith("error: no context named 'nope'")


def test_lazy_commands_are_listed_without_import_and_load_on_use() -> None:
    import sys

    from shoal.cli.common import ShoalGroup

    group = ShoalGroup("root")
    group.add_lazy_command("done", "shoal.cli.completion", "completion", "Print the completion script.")
    sys.modules.pop("shoal.cli.completion", None)
    ctx = click.Context(group)
    assert group.list_commands(ctx) == ["done"]
    assert "Print the completion script." in group.get_help(ctx)
    assert "shoal.cli.completion" not in sys.modules
    assert CliRunner().invoke(group, ["done", "bash"]).exit_code == 0


def _leaves(group: click.Group, ctx: click.Context) -> list[click.Command]:
    found: list[click.Command] = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            found += _leaves(command, ctx)
        elif command is not None:
            found.append(command)
    return found


def test_every_command_of_the_cli_takes_output() -> None:
    leaves = _leaves(cli, click.Context(cli))
    assert len(leaves) >= 25
    missing = [c.name for c in leaves if not any("--output" in p.opts for p in c.params)]
    assert missing == []


def test_log_record() -> None:
    from shoal.cli.services import log_record

    assert log_record("2| hello | world") == {"replica": "2", "line": "hello | world"}
    assert log_record("no prefix") == {"replica": "", "line": "no prefix"}


def test_unreadable_ca_is_one_line(home: Path) -> None:
    bad = home / "bad.pem"
    bad.write_text("not a certificate")
    runner = CliRunner()
    for ca, reason in ((home / "missing.pem", "No such file or directory"), (bad, "CA certificate")):
        got = runner.invoke(cli, ["ps"], env={"SHOAL_SERVER": "https://127.0.0.1:9", "SHOAL_CACERT": str(ca)})
        assert got.exit_code == 1 and len(got.stderr.splitlines()) == 1
        assert got.stderr.startswith(f"error: CA certificate {ca}: ") and reason in got.stderr


def test_os_errors_and_bad_answers_are_one_line() -> None:
    from pydantic import BaseModel

    from shoal.cli.common import ShoalGroup
    from shoal.client import Client

    class Answer(BaseModel):
        id: int

    group = ShoalGroup("root")

    @group.command("io")
    def io() -> None:
        raise FileNotFoundError(2, "No such file or directory", "/shx/none")

    @group.command("wire")
    def wire() -> None:  # the client reads an answer its model refuses
        with Client("https://127.0.0.1:9") as api:
            api.transport.call_json = lambda *args, **kwargs: {"id": "x"}  # type: ignore[method-assign]
            api._one(Answer, "GET", "/answer")

    runner = CliRunner()
    assert runner.invoke(group, ["io"]).stderr == "error: No such file or directory: /shx/none\n"
    got = runner.invoke(group, ["wire"])
    assert got.exit_code == 1 and got.stderr.startswith("error: unexpected answer from the server: id: ")


def test_volume_ls_fields_and_rows() -> None:
    from shoal.cli.volumes import VOLUME_FIELDS, volume_record, volume_row
    from shoal.client.models import Volume

    bound = Volume.model_validate({"project": "p", "name": "data", "node": "n2", "created": "x", "extra": 1})
    assert volume_record(bound) == {"project": "p", "name": "data", "node": "n2", "size": None}
    assert VOLUME_FIELDS == ["project", "name", "node", "size"]
    assert volume_row(bound) == ["p", "data", "n2", "-"]
    assert volume_row(bound.model_copy(update={"size": 3 << 20}))[3] == "3Mi"

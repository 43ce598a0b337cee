"""`shoal registry login|ls|rm` against a real server: the password goes in, never comes out."""

from __future__ import annotations

import json

from tests.integration.cli.conftest import Shoal

PASSWORD = "shx-registry-pass"


def test_registry_login_ls_rm_never_prints_password(shoal: Shoal) -> None:
    done = shoal(
        "registry", "login", "Reg.Example:5000", "-u", "team", "--password-stdin", input=PASSWORD + "\n"
    )
    assert done.exit_code == 0 and done.stdout.strip() == "stored login for reg.example:5000 as team"
    listed = shoal("registry", "ls", "-o", "json")
    rows = json.loads(listed.stdout)
    assert [(r["host"], r["username"]) for r in rows] == [("reg.example:5000", "team")]
    table = shoal("registry", "ls").stdout
    assert "HOST" in table and "USERNAME" in table and "CREATED" in table and "reg.example:5000" in table
    for out in (table, listed.stdout, done.stdout):
        assert PASSWORD not in out
    as_json = shoal(
        "registry", "login", "reg.example:5000", "-u", "u2", "--password-stdin", "-o", "json", input="p"
    )
    assert json.loads(as_json.stdout) == {"host": "reg.example:5000", "username": "u2"}
    assert shoal("registry", "rm", "reg.example:5000").stdout.strip() == "removed login for reg.example:5000"
    assert json.loads(shoal("registry", "ls", "-o", "json").stdout) == []
    missing = shoal("registry", "rm", "reg.example:5000")
    assert (
        missing.exit_code == 1 and missing.stderr.strip() == "error: no login for registry reg.example:5000"
    )


def test_registry_login_without_a_terminal_needs_the_flags(shoal: Shoal) -> None:
    no_user = shoal("registry", "login", "reg.example", "--password-stdin", input="p")
    assert no_user.exit_code == 1 and "--password-stdin needs --username" in no_user.stderr
    no_pass = shoal("registry", "login", "reg.example", "-u", "team", input="")
    assert no_pass.exit_code == 1 and "pass --password-stdin" in no_pass.stderr
    empty = shoal("registry", "login", "reg.example", "-u", "team", "--password-stdin", input="\n")
    assert empty.exit_code == 1 and "the password is empty" in empty.stderr

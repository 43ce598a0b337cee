"""Interpolation and env files as `docker compose` does them (compose_interp, compose_dotenv)."""

from __future__ import annotations

import pytest

from shoal.model.compose_dotenv import DotenvError, parse_dotenv
from shoal.model.compose_interp import Expander, InterpolationError, interpolate

ENV = {"SET": "value", "EMPTY": "", "PORT": "8080"}

CASES = [
    ("plain", "plain"),
    ("$SET", "value"),
    ("${SET}", "value"),
    ("a${SET}b$SET.c", "avaluebvalue.c"),
    ("${UNSET:-default}", "default"),
    ("${EMPTY:-default}", "default"),
    ("${EMPTY-default}", ""),
    ("${UNSET-default}", "default"),
    ("${SET:+alt}", "alt"),
    ("${EMPTY:+alt}", ""),
    ("${EMPTY+alt}", "alt"),
    ("${UNSET+alt}", ""),
    ("${UNSET:-${PORT}}", "8080"),
    ("${UNSET:-a ${SET} b}", "a value b"),
    ("$$SET", "$SET"),
    ("$${SET}", "${SET}"),
    ("pg_isready -d $${POSTGRES_DB}", "pg_isready -d ${POSTGRES_DB}"),
    ("cost: 5$", "cost: 5$"),
    ("${EXPOSE_PORT-:2283:2283}", ":2283:2283"),  # immich's port
    ("${SET?needed}", "value"),
    ("${EMPTY?needed}", ""),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_expands_as_compose(text: str, expected: str) -> None:
    assert Expander(ENV).expand(text) == expected


def test_unset_variables_become_empty_and_are_remembered_once() -> None:
    expander = Expander(ENV)
    assert expander.expand("${NOPE}/$NOPE/${OTHER}") == "//"
    assert expander.unset == ["NOPE", "OTHER"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "${UNSET:?database password required}",
            "required variable UNSET is missing a value: database password required",
        ),
        ("${EMPTY:?}", "required variable EMPTY is missing a value: EMPTY is not set"),
        ("${UNSET?}", "required variable UNSET is missing a value: UNSET is not set"),
        ("${SET", 'invalid interpolation format for "${SET"'),
        ("${}", 'invalid interpolation format for "${}"'),
        ("${SET!x}", 'invalid interpolation format for "${SET!x}"'),
    ],
)
def test_errors_name_the_variable(text: str, message: str) -> None:
    with pytest.raises(InterpolationError) as caught:
        Expander(ENV).expand(text)
    assert str(caught.value) == message


def test_a_document_is_expanded_in_place_and_every_error_reported() -> None:
    doc = {"services": {"a": {"image": "x:${SET}", "environment": {"P": "${A:?}", "Q": "${B:?}"}, "n": 3}}}
    found: list[tuple[list[int | str], str]] = []
    interpolate(doc, Expander(ENV), lambda loc, msg: found.append((list(loc), msg)))
    assert doc["services"]["a"]["image"] == "x:value" and doc["services"]["a"]["n"] == 3
    assert [loc for loc, _ in found] == [
        ["services", "a", "environment", "P"],
        ["services", "a", "environment", "Q"],
    ]


def test_hostile_text_is_linear() -> None:
    text = "${A:-" * 200 + "x" + "}" * 200
    assert Expander({}).expand(text) == "x"
    assert Expander({}).expand("$" * 100_000) == "$" * 50_000


DOTENV = """
# a comment
export EXPORTED=yes
PLAIN=  spaced value   # a comment after
QUOTED='single $SET # not a comment'
DOUBLE="line\\nnext \\"quoted\\" ${PLAIN}"
MULTI="first
second"
REF=${PLAIN}-x
EMPTY=
FROM_SHELL
NOT_IN_SHELL
"""


def test_dotenv_reads_what_compose_reads() -> None:
    found = parse_dotenv(DOTENV, {"FROM_SHELL": "shell", "SET": "no"})
    assert found == {
        "EXPORTED": "yes",
        "PLAIN": "spaced value",
        "QUOTED": "single $SET # not a comment",
        "DOUBLE": 'line\nnext "quoted" spaced value',
        "MULTI": "first\nsecond",
        "REF": "spaced value-x",
        "EMPTY": "",
        "FROM_SHELL": "shell",
    }


def test_dotenv_raw_format_takes_values_as_written() -> None:
    assert parse_dotenv("A='q' ${X}\nB=a=b\n", raw=True) == {"A": "'q' ${X}", "B": "a=b"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not a pair here\n", "line 1: expected KEY=VALUE"),
        ("A='open\n", "line 1: unterminated single quote"),
        ('A="open\nstill\n', "line 1: unterminated double quote"),
        ("A=${B:?need B}\n", "line 1: required variable B is missing a value: need B"),
    ],
)
def test_dotenv_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(DotenvError) as caught:
        parse_dotenv(text)
    assert str(caught.value).startswith(message)

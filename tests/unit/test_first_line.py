"""shoal.errors.first_line: one line of an error for a person, whatever the error says."""

from __future__ import annotations

from shoal.errors import first_line


def test_the_first_line_stripped() -> None:
    assert first_line(ValueError("\n  bad value  \nmore detail\n")) == "bad value"


def test_an_exception_that_says_nothing_is_named_by_its_type() -> None:
    assert first_line(KeyboardInterrupt()) == "KeyboardInterrupt"
    assert first_line(OSError("  ")) == "OSError"


def test_a_text_that_says_nothing_stays_empty() -> None:
    assert first_line("  \n ") == ""
    assert first_line("one\ntwo") == "one"

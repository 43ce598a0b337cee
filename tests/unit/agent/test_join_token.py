"""Join tokens and CA pinning: parse, and pick the pinned certificate or refuse."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from shoal.agent.join import JoinError, cert_fingerprint, parse_token, pick_pinned
from shoal.control.pki import fingerprint, make_ca


def test_parse_token() -> None:
    fp = "AB" * 32
    token = parse_token(f"  shoal-join.s3cr.et.{fp}\n")
    assert token.secret == "s3cr.et"
    assert token.ca_fingerprint == fp.lower()
    assert token.raw == f"shoal-join.s3cr.et.{fp}"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "shoal-join",
        "shoal-join.secret",
        f"nope.secret.{'a' * 64}",
        f"shoal-join..{'a' * 64}",
        "shoal-join.s.abc",
    ],
)
def test_malformed_tokens_are_one_line_errors(raw: str) -> None:
    with pytest.raises(JoinError) as info:
        parse_token(raw)
    assert "\n" not in str(info.value)


def _ca(tmp: Path, name: str) -> tuple[x509.Certificate, str]:
    make_ca(tmp / f"{name}.crt", tmp / f"{name}.key")
    cert = x509.load_pem_x509_certificate((tmp / f"{name}.crt").read_bytes())
    return cert, fingerprint(tmp / f"{name}.crt")


def test_pins_the_ca_whose_der_sha256_matches(tmp_path: Path) -> None:
    good, good_fp = _ca(tmp_path, "good")
    other, _ = _ca(tmp_path, "other")
    assert cert_fingerprint(good) == good_fp
    assert pick_pinned([other, good], good_fp) is good


def test_refuses_a_ca_that_does_not_match(tmp_path: Path) -> None:
    other, _ = _ca(tmp_path, "other")
    with pytest.raises(JoinError, match="does not match the join token"):
        pick_pinned([other], "0" * 64)

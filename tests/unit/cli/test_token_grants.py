"""`shoal token create --role join --label k=v --ingress --relay`: the grants of a join token."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from shoal.cli.tokens import grants_text, join_grants, token
from shoal.errors import ConfigError
from shoal.model.join_wire import JoinGrants


def test_join_grants_are_parsed_from_the_flags() -> None:
    grants = join_grants(("role=db", "zone=a=b"), ingress=True, relay=False)
    assert grants == JoinGrants(labels={"role": "db", "zone": "a=b"}, ingress=True)
    assert grants_text(grants) == "role=db, zone=a=b, ingress"
    assert grants_text(JoinGrants()) == "no labels, no ingress, no relay"
    with pytest.raises(ConfigError, match="expected key=value"):
        join_grants(("nokey",), ingress=False, relay=False)


@pytest.mark.parametrize("flag", [["--label", "role=db"], ["--ingress"], ["--relay"]])
def test_grants_on_an_api_token_are_refused_before_any_request(flag: list[str]) -> None:
    done = CliRunner().invoke(token, ["create", "--role", "operator", *flag])
    assert isinstance(done.exception, ConfigError)
    assert "add --role join" in str(done.exception)


def test_a_join_token_takes_no_name() -> None:
    done = CliRunner().invoke(token, ["create", "--role", "join", "--name", "x"])
    assert isinstance(done.exception, ConfigError) and "a join token has no name" in str(done.exception)


def test_a_join_tokens_ttl_is_a_duration() -> None:
    done = CliRunner().invoke(token, ["create", "--role", "join", "--ttl", "forever"])
    assert done.exit_code == 2 and "--ttl" in done.output

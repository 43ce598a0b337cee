"""A join request's labels and ingress flag are requests: what its token does not grant is named."""

from __future__ import annotations

from shoal.control.api.agent import JoinRequest, ungranted
from shoal.model.join_wire import JoinGrants


def test_what_a_join_request_asks_beyond_its_token_is_named() -> None:
    asked = JoinRequest(name="n1", labels={"role": "db", "zone": "a"}, ingress=True)
    assert ungranted(asked, JoinGrants()) == ["role=db", "zone=a", "ingress"]
    assert ungranted(asked, JoinGrants(labels={"role": "db"}, ingress=True)) == ["zone=a"]
    assert ungranted(asked, JoinGrants(labels={"role": "web", "zone": "a"})) == ["role=db", "ingress"]
    assert (
        ungranted(JoinRequest(name="n1"), JoinGrants(labels={"role": "db"}, ingress=True, relay=True)) == []
    )

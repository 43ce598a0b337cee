"""The sandbox's packet-loss table: drops a share of the node link's packets, each way, early."""

from __future__ import annotations

from shoal.sandbox.disturb import LOSS_TABLE, loss_rules


def test_loss_rules_drop_the_share_on_the_link_both_ways_before_conntrack() -> None:
    rules = [" ".join(argv) for argv in loss_rules(20)]
    assert rules[0] == f"add table inet {LOSS_TABLE}"
    assert any("hook prerouting priority -300" in r for r in rules)
    assert any("hook postrouting priority -300" in r for r in rules)
    assert f"add rule inet {LOSS_TABLE} in iifname eth0 numgen random mod 100 < 20 drop" in rules
    assert f"add rule inet {LOSS_TABLE} out oifname eth0 numgen random mod 100 < 20 drop" in rules

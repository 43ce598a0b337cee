"""A revision stores the service's update and rollback policies whole: one type from the deploy
file to the planner, so no copy can drop a field (one once lost `max_failure_ratio`)."""

from __future__ import annotations

from shoal.control.deploy import revision_from
from shoal.control.revision import RevisionSpec
from shoal.model.compose import parse_compose

DOC = """
services:
  web:
    image: app:1
    deploy:
      replicas: 4
      update_config: {parallelism: 2, delay: 3s, failure_action: rollback, monitor: 7s,
                      max_failure_ratio: 0.5, order: start-first}
      rollback_config: {parallelism: 3, max_failure_ratio: 0.25, failure_action: continue}
"""


def test_every_field_of_both_policies_survives_the_store() -> None:
    svc = parse_compose(DOC, "p").services["web"]
    stored = RevisionSpec.model_validate_json(revision_from(svc).model_dump_json())
    assert stored.update == svc.update_config and stored.rollback == svc.rollback_config
    assert (stored.update.max_failure_ratio, stored.update.order, stored.update.delay_s) == (
        0.5,
        "start-first",
        3.0,
    )
    assert (stored.rollback.parallelism, stored.rollback.failure_action) == (3, "continue")


def test_a_revision_stored_before_reads_the_same_policy() -> None:
    old = {"template": {"id": "", "service": "web", "image": "img"},
           "update": {"parallelism": 2, "delay_s": 1.0, "order": "start-first", "failure_action": "rollback",
                      "monitor_s": 5.0, "max_failure_ratio": 0.5}}  # fmt: skip
    update = RevisionSpec.model_validate(old).update
    assert (update.parallelism, update.order, update.failure_action, update.max_failure_ratio) == (
        2, "start-first", "rollback", 0.5,
    )  # fmt: skip

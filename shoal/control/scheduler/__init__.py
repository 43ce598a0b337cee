"""The scheduler: pure placement (snapshot → plan) and the rolling-update planner.

The controller builds a `Snapshot` from the store each tick, applies `schedule(snapshot)`'s `Plan`
in one transaction, and asks `next_step` what each rolling update does next. Nothing here does I/O.
"""

from shoal.control.scheduler.placement import schedule
from shoal.control.scheduler.rebalance import Move, RebalanceStep, rebalance
from shoal.control.scheduler.rollout import next_step
from shoal.control.scheduler.rollout_types import RolloutInput, RolloutTask, StartTask, Step
from shoal.control.scheduler.types import (
    NodeInfo,
    Placement,
    Plan,
    Removal,
    ServicePlacement,
    Snapshot,
    TaskInfo,
    Unplaceable,
    VolumeBinding,
)

__all__ = [
    "Move",
    "NodeInfo",
    "Placement",
    "Plan",
    "RebalanceStep",
    "Removal",
    "RolloutInput",
    "RolloutTask",
    "ServicePlacement",
    "Snapshot",
    "StartTask",
    "Step",
    "TaskInfo",
    "Unplaceable",
    "VolumeBinding",
    "next_step",
    "rebalance",
    "schedule",
]

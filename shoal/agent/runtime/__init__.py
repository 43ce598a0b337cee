"""The agent's container runtime over runc and conmon (see runtime.py for the pipeline)."""

from __future__ import annotations

from shoal.agent.runtime.logs import LogLine
from shoal.agent.runtime.policy import Decision, Exit, decide
from shoal.agent.runtime.runtime import ObservedContainer, Runtime, RuntimeConfig, SupervisorAction
from shoal.model.exec_wire import ExecResult

__all__ = [
    "Decision",
    "ExecResult",
    "Exit",
    "LogLine",
    "ObservedContainer",
    "Runtime",
    "RuntimeConfig",
    "SupervisorAction",
    "decide",
]

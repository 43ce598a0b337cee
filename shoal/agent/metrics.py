"""The agent's Prometheus metrics, served at /metrics by agent.httpd on the overlay address.

The loop updates them: containers by state (from each status it builds), restarts, reconcile
step durations and errors, server errors, and the age of each WireGuard peer's last handshake.
Each agent has its own registry, so several agents (and tests) can live in one process.
"""

from __future__ import annotations

import time
from collections import Counter as Tally

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from shoal.model.status import NodeStatus

STATES = ("pending", "pulling", "created", "running", "exited", "failed", "stopped")


class AgentMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self.containers = Gauge("shoal_agent_containers", "Containers by state", ["state"], registry=reg)
        self.unhealthy = Gauge("shoal_agent_containers_unhealthy", "Unhealthy containers", registry=reg)
        self.restarts = Counter("shoal_agent_health_restarts", "Restarts of unhealthy replicas", registry=reg)
        self.container_restarts = Gauge(
            "shoal_agent_container_restarts",
            "Restarts per container (policy and health)",
            ["id"],
            registry=reg,
        )
        self.reconcile_seconds = Histogram(
            "shoal_agent_reconcile_seconds", "Duration of each reconcile step", ["step"], registry=reg
        )
        self.step_errors = Counter(
            "shoal_agent_step_errors", "Reconcile steps that failed", ["step"], registry=reg
        )
        self.server_errors = Counter("shoal_agent_server_errors", "Failed calls to the server", registry=reg)
        self.handshake_age = Gauge(
            "shoal_agent_peer_handshake_age_seconds",
            "Seconds since a peer's last handshake",
            ["peer"],
            registry=reg,
        )

    def observe(self, status: NodeStatus) -> None:
        """Set the gauges from one status report."""
        tally: Tally[str] = Tally(c.state for c in status.containers)
        for state in STATES:
            self.containers.labels(state).set(tally.get(state, 0))
        self.unhealthy.set(sum(1 for c in status.containers if c.health == "unhealthy"))
        self.container_restarts.clear()
        for c in status.containers:
            self.container_restarts.labels(c.id).set(c.restarts)
        self._peers(status)

    def _peers(self, status: NodeStatus) -> None:
        self.handshake_age.clear()
        now = time.time()
        for peer in status.peers:
            if peer.latest_handshake:
                self.handshake_age.labels(peer.name or peer.public_key).set(now - peer.latest_handshake)

    def render(self) -> bytes:
        return generate_latest(self.registry)

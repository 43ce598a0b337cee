"""How the agent loop takes failed calls to the server: jittered back-off, and fencing.

An outage (no answer, a timeout, a 5xx) is waited out with exponential back-off whose delays are
jittered, so agents cut off together do not come back in step; the node keeps serving its
saved state meanwhile. A refusal is different: 401/404 for the node's own credential means the
node was removed from the cluster, and the cluster already runs its replicas elsewhere. Once the
refusal has lasted `grace_s` (with no accepted call in between), `Fence` says so, once, and the
loop stops the node's containers.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from shoal.client.errors import NotFoundError, UnauthorizedError

JITTER = 0.5  # a delay is drawn from the upper half of its step: [step * (1 - JITTER), step]


@dataclass
class Backoff:
    """Exponential back-off between failed calls to the server, jittered within each step."""

    first_s: float = 0.5
    max_s: float = 10.0
    current: float = 0.0  # the step: doubles on each failure up to max_s
    delay: float = 0.0  # the wait drawn for the current step
    rng: random.Random = field(default_factory=random.Random)

    def failed(self) -> float:
        """The next wait: never more than the step (so never more than max_s)."""
        self.current = self.first_s if self.current == 0 else min(self.max_s, self.current * 2)
        self.delay = self.current * (1 - JITTER * self.rng.random())
        return self.delay

    def ok(self) -> None:
        self.current = self.delay = 0.0


def refusal(exc: BaseException) -> bool:
    """Whether a failed call was the server refusing the node's credential (not an outage)."""
    return isinstance(exc, UnauthorizedError | NotFoundError)


@dataclass
class Fence:
    """The clock of a lasting refusal: `refused()` is True once, when the node must fence itself."""

    grace_s: float
    clock: Callable[[], float] = time.monotonic
    refused_since: float | None = None
    fenced: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)  # the poller and the reporter

    def refused(self) -> bool:
        with self._lock:
            now = self.clock()
            if self.refused_since is None:
                self.refused_since = now
            if self.fenced or now - self.refused_since < self.grace_s:
                return False
            self.fenced = True
            return True

    def due_in(self) -> float:
        """Seconds until a refusal that lasts would fence the node (inf: none is running)."""
        with self._lock:
            if self.refused_since is None or self.fenced:
                return float("inf")
            return max(0.0, self.grace_s - (self.clock() - self.refused_since))

    def accepted(self) -> None:
        with self._lock:
            self.refused_since, self.fenced = None, False
